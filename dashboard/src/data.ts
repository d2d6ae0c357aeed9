/**
 * Snapshots shared by several views, kept fresh by the stream: the cluster (GET /api/nodes, refreshed on every
 * `nodes` event), the queues' counts (GET /api/queues, the counts table, refreshed at most once a second while task
 * events flow) and the cluster's timeline since the page loaded.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { api } from "./api.ts";
import { type LiveEvent, useLive, useThrottle } from "./live.tsx";

export const keys = {
  nodes: ["nodes"] as const,
  node: ["node"] as const,
  queues: ["queues"] as const,
  schedules: ["schedules"] as const,
  stats: ["stats"] as const,
};

export function useCluster() {
  return useQuery({ queryKey: keys.nodes, queryFn: api.nodes, staleTime: Number.POSITIVE_INFINITY });
}

/** A node's name from its id (the id itself for a node that left the store). */
export function useNodeName(): (id: string | null) => string | null {
  const cluster = useCluster();
  const names = useMemo(() => new Map((cluster.data?.nodes ?? []).map((n) => [n.id, n.name])), [cluster.data]);
  return useCallback((id: string | null) => (id === null ? null : (names.get(id) ?? id)), [names]);
}

export function useThisNode() {
  return useQuery({ queryKey: keys.node, queryFn: api.node, staleTime: Number.POSITIVE_INFINITY });
}

export function useQueues() {
  return useQuery({ queryKey: keys.queues, queryFn: api.queues, staleTime: Number.POSITIVE_INFINITY });
}

// ---- the cluster's timeline ---------------------------------------------------------------------------------

export type TimelineEntry = { offset: number; name: string; at: string; data: Record<string, unknown> };
let timeline: TimelineEntry[] = [];
const timelineListeners = new Set<() => void>();

function addToTimeline(events: LiveEvent[]): void {
  const known = new Set(timeline.map((e) => e.offset));
  const fresh = events
    .filter((e) => !known.has(e.offset) && e.name !== "stats.bucket")
    .map((e) => ({ offset: e.offset, name: e.name, at: e.at, data: (e.data ?? {}) as Record<string, unknown> }));
  if (fresh.length === 0) return;
  timeline = [...timeline, ...fresh].slice(-500);
  for (const listener of timelineListeners) listener();
}

export function useTimeline(): TimelineEntry[] {
  return useSyncExternalStore(
    (listener) => {
      timelineListeners.add(listener);
      return () => timelineListeners.delete(listener);
    },
    () => timeline,
  );
}

/**
 * Mounted once, in the shell: follows `nodes` from the cluster snapshot's position, refreshing the cluster, this
 * node and (for pauses and concurrency) the queues.
 */
export function useClusterLive(): void {
  const queryClient = useQueryClient();
  const cluster = useCluster();
  const refreshNodes = useThrottle(() => {
    void queryClient.invalidateQueries({ queryKey: keys.nodes });
    void queryClient.invalidateQueries({ queryKey: keys.node });
  }, 1000);
  const refreshQueues = useThrottle(() => void queryClient.invalidateQueries({ queryKey: keys.queues }), 500);
  const since = cluster.data?.position ?? null;
  // Subscribed once, from a little before the first snapshot: the timeline opens with the cluster's recent history
  // (the nodes events among the last HISTORY_EVENTS of the log), then goes on live; later refreshes only re-read
  // rows. Events up to the snapshot are in its rows already.
  const first = useLatch(since);
  const history = first === null ? null : { epoch: first.epoch, offset: Math.max(0, first.offset - HISTORY_EVENTS) };
  useLive(["nodes"], {
    since: history,
    onEvents: (events) => {
      addToTimeline(events);
      const fresh = events.filter((e) => first === null || e.offset > first.offset);
      if (fresh.length === 0) return;
      refreshNodes();
      if (fresh.some((e) => e.name.startsWith("queue."))) refreshQueues();
    },
    // The history is gone (pruned, or more than the server replays): live from now, rows re-read.
    onReload: () => {
      refreshNodes();
      refreshQueues();
    },
  });
}

/** How far back in the log the cluster's timeline starts (the server replays up to 10,000 log events). */
const HISTORY_EVENTS = 5000;

/** The first non-null value it is given, for good (a subscription's starting point). */
export function useLatch<T>(value: T | null): T | null {
  const ref = useRef<T | null>(null);
  if (ref.current === null && value !== null) ref.current = value;
  return ref.current;
}

/** Task events per second above which a view that only needs a cue stops following every task event. */
const BUSY_EVENTS_PER_SECOND = 300;
const BUSY_FOR_MS = 30_000;

/**
 * Calls `cue` (throttled by the caller) when task transitions happen, from `since`. While the cluster is busy (over
 * BUSY_EVENTS_PER_SECOND task events a second) a view that only re-reads a snapshot has no use for each event: it
 * follows the `stats` channel instead (each node's bucket, every 5 s while there is work) and tries again after
 * BUSY_FOR_MS. Nothing is lost by the switch: the cue only says "re-read the snapshot".
 */
export function useTaskCue(
  /** From this position; undefined: from now; null: not yet (no subscription). */
  since: { epoch: string; offset: number } | null | undefined,
  cue: (events: LiveEvent[]) => void,
): { busy: boolean } {
  const [busy, setBusy] = useState(false);
  const rate = useRef({ from: 0, count: 0 });
  useEffect(() => {
    if (!busy) return;
    const timer = setTimeout(() => setBusy(false), BUSY_FOR_MS);
    return () => clearTimeout(timer);
  }, [busy]);
  useLive(since === null ? null : busy ? ["stats"] : ["tasks"], {
    // Back from busy, from now: the snapshot is re-read at once anyway.
    since: busy ? undefined : since,
    onEvents: (events) => {
      if (!busy) {
        const now = performance.now();
        const window = rate.current;
        if (window.from === 0) window.from = now;
        window.count += events.length;
        const elapsed = now - window.from;
        if (elapsed >= 2000) {
          if (window.count / (elapsed / 1000) > BUSY_EVENTS_PER_SECOND) setBusy(true);
          window.from = now;
          window.count = 0;
        }
      }
      cue(events);
    },
    onReload: () => cue([]),
  });
  return { busy };
}

/** Refreshes the queue counts (at most once a second) while tasks change. */
export function useCountsLive(): { busy: boolean } {
  const queryClient = useQueryClient();
  const queues = useQueues();
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: keys.queues }), 1000);
  const start = useLatch(queues.data?.position ?? null);
  return useTaskCue(start, (events) => {
    if (events.length === 0 || events.some((e) => e.name !== "task.progress")) refresh();
  });
}

export function major(version: string): number {
  return Number.parseInt(version.split(".")[0] ?? "0", 10);
}
