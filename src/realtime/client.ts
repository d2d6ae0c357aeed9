/**
 * The live stream's client for browsers and Node 24 (its global WebSocket): ESM, no dependencies
 * (docs/live-protocol.md). It connects, subscribes, and when the connection drops it reconnects with exponential
 * backoff and jitter and resubscribes each subscription from the last offset it saw, so that a refresh-free
 * reconnect, or a move to another node, loses nothing and repeats nothing. A subscription that comes back
 * `recovered: false` calls its `onReload`: the application reloads its state (and the position with it).
 *
 *   const live = new LiveClient({ url: "ws://localhost:4000/api/live", token });
 *   live.onState((state) => console.log(state));
 *   const sub = live.subscribe(["task:42"], (event) => render(event), { onReload: () => reload() });
 *   sub.close(); live.close();
 *
 * This file must stay self-contained: it is shipped to browsers as it is.
 */

export type LiveState = "connecting" | "live" | "recovering" | "offline";

export type LivePosition = { epoch: string; offset: number };

export type LiveEvent = {
  offset: number;
  /** `task.completed`, `message`, `node.joined`… */
  name: string;
  taskId?: number;
  queue?: string;
  channel?: string;
  data: unknown;
  at: string;
};

export type LiveError = { code: string; message: string };

export type SubscribeOptions = {
  /** Start after this position (from a snapshot's `position`); by default, from now. */
  since?: LivePosition;
  /** A subscription token for application channels. */
  token?: string;
  /** The gap could not be replayed (`recovered: false`): reload your state. */
  onReload?: (reason: string) => void;
  /** The server refused the subscription (a bad channel, a token that does not grant it…). */
  onError?: (error: LiveError) => void;
};

export type LiveClientOptions = {
  url: string;
  /** The API token, for task and node channels when the server has one. */
  token?: string;
  /** First reconnect delay; doubles up to maxDelayMs, with ±50 % jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** A WebSocket constructor, where there is no global one. */
  WebSocket?: typeof WebSocket;
};

export type LiveSubscriptionRef = {
  /** Where this subscription is: resume from here later (for example after a page reload, from storage). */
  readonly position: LivePosition | null;
  close(): void;
};

type Subscription = {
  id: string;
  channels: string[];
  listener: (event: LiveEvent) => void;
  options: SubscribeOptions;
  position: LivePosition | null;
  closed: boolean;
};

export class LiveClient {
  readonly #options: Required<Omit<LiveClientOptions, "token" | "WebSocket">> & Pick<LiveClientOptions, "token">;
  readonly #WebSocket: typeof WebSocket;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #stateListeners = new Set<(state: LiveState) => void>();
  #socket: WebSocket | null = null;
  #state: LiveState = "offline";
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #watchdog: ReturnType<typeof setTimeout> | null = null;
  #heartbeatMs = 15_000;
  #nextId = 0;
  #closed = false;
  /** Whether the current connection has had its `welcome`: subscriptions go out then, and not before. */
  #welcomed = false;
  /** Subscriptions sent on the current connection. */
  #sent = new Set<string>();
  /** Subscriptions sent on the current connection and not answered yet. */
  #pending = new Set<string>();

  constructor(options: LiveClientOptions) {
    this.#options = { minDelayMs: 500, maxDelayMs: 20_000, ...options };
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (Socket === undefined) throw new Error("no WebSocket here: pass one in the options");
    this.#WebSocket = Socket;
    this.#connect();
  }

  get state(): LiveState {
    return this.#state;
  }

  /** Calls `listener` on every change of the connection's state (and once now). Returns how to stop. */
  onState(listener: (state: LiveState) => void): () => void {
    this.#stateListeners.add(listener);
    listener(this.#state);
    return () => this.#stateListeners.delete(listener);
  }

  subscribe(
    channels: string[],
    listener: (event: LiveEvent) => void,
    options: SubscribeOptions = {},
  ): LiveSubscriptionRef {
    const id = `s${++this.#nextId}`;
    const subscription: Subscription = {
      id,
      channels,
      listener,
      options,
      position: options.since ?? null,
      closed: false,
    };
    this.#subscriptions.set(id, subscription);
    // Before the welcome, the welcome's handler sends it with the others (sending it now too would make it a
    // duplicate, refused, and dropped).
    if (this.#welcomed) this.#sendSubscribe(subscription);
    return {
      get position() {
        return subscription.position;
      },
      close: () => {
        if (subscription.closed) return;
        subscription.closed = true;
        this.#subscriptions.delete(id);
        if (this.#sent.has(id)) this.#send({ type: "unsubscribe", id });
        this.#sent.delete(id);
        // Its answer may never come (the server drops a subscription closed before it answered).
        if (this.#pending.delete(id)) this.#settled();
      },
    };
  }

  /** Publishes to an application channel (the connection's token, or `token`, must grant it). */
  publish(channel: string, data: unknown, token?: string): void {
    this.#send({ type: "publish", channel, data, ...(token === undefined ? {} : { token }) });
  }

  close(): void {
    this.#closed = true;
    this.#welcomed = false;
    this.#clearTimers();
    this.#socket?.close(1000, "closed by the client");
    this.#socket = null;
    this.#setState("offline");
  }

  #connect(): void {
    if (this.#closed) return;
    this.#setState(this.#attempt === 0 ? "connecting" : "recovering");
    const url = new URL(this.#options.url);
    if (this.#options.token !== undefined) url.searchParams.set("token", this.#options.token);
    const socket = new this.#WebSocket(url.toString());
    this.#socket = socket;
    this.#welcomed = false;
    this.#sent.clear();
    this.#pending.clear();
    socket.onmessage = (message) => this.#onFrame(socket, String(message.data));
    socket.onclose = () => this.#onDrop(socket);
    socket.onerror = () => socket.close();
  }

  #onFrame(socket: WebSocket, text: string): void {
    if (socket !== this.#socket) return;
    this.#armWatchdog();
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (frame.type) {
      case "welcome":
        if (typeof frame.heartbeatMs === "number") this.#heartbeatMs = frame.heartbeatMs;
        this.#welcomed = true;
        for (const subscription of this.#subscriptions.values()) this.#sendSubscribe(subscription);
        this.#settled();
        break;
      case "subscribed":
        this.#onSubscribed(frame);
        break;
      case "event":
        this.#onEvent(frame);
        break;
      case "ping":
        // The connection is live up to this offset on every subscription: resuming from it loses nothing.
        for (const subscription of this.#subscriptions.values()) this.#advance(subscription, frame);
        break;
      case "error":
        this.#onError(frame);
        break;
    }
  }

  #onSubscribed(frame: Record<string, unknown>): void {
    const subscription = this.#subscriptions.get(String(frame.id));
    if (subscription === undefined) return;
    this.#pending.delete(subscription.id);
    if (frame.recovered === false) {
      subscription.position = { epoch: String(frame.epoch), offset: Number(frame.offset) };
      subscription.options.onReload?.(String(frame.reason ?? "not recovered"));
    } else if (subscription.position === null || subscription.position.epoch !== frame.epoch) {
      subscription.position = { epoch: String(frame.epoch), offset: Number(frame.offset) };
    }
    this.#settled();
  }

  #onEvent(frame: Record<string, unknown>): void {
    const subscription = this.#subscriptions.get(String(frame.sub));
    if (subscription === undefined || subscription.closed) return;
    const offset = Number(frame.offset);
    // Seen already (a replay that overlaps what came before it): never twice.
    if (subscription.position !== null && offset <= subscription.position.offset) return;
    subscription.position = { epoch: subscription.position?.epoch ?? "", offset };
    const { type: _type, sub: _sub, ...event } = frame;
    subscription.listener(event as unknown as LiveEvent);
  }

  #advance(subscription: Subscription, frame: Record<string, unknown>): void {
    if (subscription.position === null || this.#pending.has(subscription.id)) return;
    if (frame.epoch !== subscription.position.epoch) return;
    const offset = Number(frame.offset);
    if (offset > subscription.position.offset) subscription.position = { epoch: subscription.position.epoch, offset };
  }

  #onError(frame: Record<string, unknown>): void {
    const subscription = typeof frame.id === "string" ? this.#subscriptions.get(frame.id) : undefined;
    if (subscription === undefined) return;
    this.#pending.delete(subscription.id);
    this.#sent.delete(subscription.id);
    this.#subscriptions.delete(subscription.id);
    subscription.closed = true;
    subscription.options.onError?.({ code: String(frame.code), message: String(frame.message) });
    this.#settled();
  }

  /** Welcomed, with every subscription answered: live, and the next drop starts its backoff afresh. */
  #settled(): void {
    if (!this.#welcomed || this.#pending.size > 0) return;
    this.#attempt = 0;
    this.#setState("live");
  }

  #sendSubscribe(subscription: Subscription): void {
    this.#sent.add(subscription.id);
    this.#pending.add(subscription.id);
    const frame: Record<string, unknown> = { type: "subscribe", id: subscription.id, channels: subscription.channels };
    if (subscription.position !== null) frame.since = subscription.position;
    if (subscription.options.token !== undefined) frame.token = subscription.options.token;
    this.#send(frame);
  }

  #send(frame: Record<string, unknown>): void {
    if (this.#socket?.readyState === 1) this.#socket.send(JSON.stringify(frame));
  }

  #onDrop(socket: WebSocket): void {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.#welcomed = false;
    this.#clearTimers();
    if (this.#closed) return;
    this.#setState("offline");
    const base = Math.min(this.#options.maxDelayMs, this.#options.minDelayMs * 2 ** this.#attempt++);
    const delay = base * (0.5 + Math.random());
    this.#retry = setTimeout(() => this.#connect(), delay);
  }

  /** A connection that has said nothing for two heartbeats and a margin is dead, whatever the socket thinks. */
  #armWatchdog(): void {
    if (this.#watchdog !== null) clearTimeout(this.#watchdog);
    const socket = this.#socket;
    this.#watchdog = setTimeout(() => socket?.close(4000, "no heartbeat"), 2 * this.#heartbeatMs + 5000);
  }

  #clearTimers(): void {
    if (this.#retry !== null) clearTimeout(this.#retry);
    if (this.#watchdog !== null) clearTimeout(this.#watchdog);
    this.#retry = null;
    this.#watchdog = null;
  }

  #setState(state: LiveState): void {
    if (state === this.#state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state);
  }
}
