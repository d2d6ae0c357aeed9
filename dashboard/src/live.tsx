/**
 * The live stream, the dashboard's only source of change: one LiveClient (src/realtime/client.ts, imported from
 * source) per page and token, and `useLive`, which follows channels from a snapshot's position.
 *
 * - Events are handed over in batches, once per animation frame, so a burst of thousands costs one render.
 * - A hidden tab does no work: its subscriptions are closed (their positions kept) and reopened from those positions
 *   when it is shown again, so it misses nothing; a gap the server cannot replay calls `onReload`.
 */
import { createContext, type ReactNode, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { type LiveEvent, type LivePosition, type LiveState, LiveClient } from "../../src/realtime/client.ts";
import { liveUrl } from "./env.ts";
import type { Position } from "./types.ts";

export type { LiveEvent, LiveState };

const LiveContext = createContext<LiveClient | null>(null);

export function LiveProvider({ token, children }: { token: string | null; children: ReactNode }) {
  const [client, setClient] = useState<LiveClient | null>(null);
  useEffect(() => {
    const live = new LiveClient({ url: liveUrl(), ...(token === null ? {} : { token }) });
    setClient(live);
    return () => live.close();
  }, [token]);
  return <LiveContext.Provider value={client}>{children}</LiveContext.Provider>;
}

export function useLiveClient(): LiveClient | null {
  return useContext(LiveContext);
}

export function useLiveState(): LiveState {
  const client = useLiveClient();
  const [state, setState] = useState<LiveState>("connecting");
  useEffect(() => (client === null ? undefined : client.onState(setState)), [client]);
  return state;
}

// ---- visibility ----------------------------------------------------------------------------------------------

const visibilityListeners = new Set<() => void>();
if (typeof document !== "undefined") {
  document.addEventListener("visibilitychange", () => {
    for (const listener of visibilityListeners) listener();
  });
}

function subscribeVisibility(listener: () => void): () => void {
  visibilityListeners.add(listener);
  return () => visibilityListeners.delete(listener);
}

/** Whether the page is shown: hidden tabs render nothing new. */
export function useVisible(): boolean {
  return useSyncExternalStore(subscribeVisibility, () => !document.hidden);
}

// ---- one flush per animation frame ---------------------------------------------------------------------------

const pending = new Set<() => void>();
let frame: number | null = null;

function schedule(flush: () => void): void {
  pending.add(flush);
  if (frame !== null || document.hidden) return;
  frame = requestAnimationFrame(runFrame);
}

function runFrame(): void {
  frame = null;
  const flushes = [...pending];
  pending.clear();
  for (const flush of flushes) flush();
}

subscribeVisibility(() => {
  if (!document.hidden && pending.size > 0 && frame === null) frame = requestAnimationFrame(runFrame);
});

// ---- subscriptions -------------------------------------------------------------------------------------------

export type UseLiveOptions = {
  /** Follow from this position (a snapshot's); null: wait for it; undefined: from now. */
  since?: Position | null;
  /** A batch of events, in offset order, once per frame. */
  onEvents: (events: LiveEvent[]) => void;
  /** The server could not replay the gap: reload the snapshot (which gives a new `since`). */
  onReload?: (reason: string) => void;
  onError?: (code: string) => void;
};

/** Follows `channels` (none: nothing) while mounted; resubscribes when they or `since` change. */
export function useLive(channels: string[] | null, options: UseLiveOptions): void {
  const client = useLiveClient();
  const handlers = useRef(options);
  handlers.current = options;
  const key = channels === null ? null : channels.join("\n");
  const since = options.since;
  const sinceKey = since === undefined ? "now" : since === null ? null : `${since.epoch}:${since.offset}`;

  // `since` is read through sinceKey (a new object with the same position is the same subscription).
  // biome-ignore lint/correctness/useExhaustiveDependencies: since is keyed by sinceKey
  useEffect(() => {
    if (client === null || key === null || sinceKey === null) return;
    const names = key.split("\n");
    let buffer: LiveEvent[] = [];
    let position: LivePosition | undefined = since ?? undefined;
    let ref: ReturnType<LiveClient["subscribe"]> | null = null;
    let closed = false;
    const flush = () => {
      if (closed || buffer.length === 0) return;
      const batch = buffer;
      buffer = [];
      handlers.current.onEvents(batch);
    };
    const open = () => {
      ref = client.subscribe(
        names,
        (event) => {
          buffer.push(event);
          schedule(flush);
        },
        {
          ...(position === undefined ? {} : { since: position }),
          onReload: (reason) => {
            buffer = [];
            handlers.current.onReload?.(reason);
          },
          onError: (error) => handlers.current.onError?.(error.code),
        },
      );
    };
    const onVisibility = () => {
      if (document.hidden && ref !== null) {
        position = ref.position ?? position;
        ref.close();
        ref = null;
      } else if (!document.hidden && ref === null) open();
    };
    if (!document.hidden) open();
    const stop = subscribeVisibility(onVisibility);
    return () => {
      // What came is delivered, even when the subscription moves on (a new snapshot, new channels) before the next
      // frame: the next subscription starts after it, and would not bring it again.
      flush();
      closed = true;
      stop();
      ref?.close();
      pending.delete(flush);
    };
  }, [client, key, sinceKey]);
}

/** Calls `fn` at most once per `ms` (first call at once, the last one of a burst at the end). */
export function useThrottle(fn: () => void, ms: number): () => void {
  const state = useRef({ fn, last: 0, timer: null as ReturnType<typeof setTimeout> | null });
  state.current.fn = fn;
  useEffect(
    () => () => {
      if (state.current.timer !== null) clearTimeout(state.current.timer);
    },
    [],
  );
  const call = useRef(() => {
    const s = state.current;
    if (s.timer !== null) return;
    const wait = s.last + ms - Date.now();
    if (wait <= 0) {
      s.last = Date.now();
      s.fn();
      return;
    }
    s.timer = setTimeout(() => {
      s.timer = null;
      s.last = Date.now();
      s.fn();
    }, wait);
  });
  return call.current;
}
