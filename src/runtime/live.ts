/**
 * The node's side of the live stream: subscriptions to channels with replay (live-feed.ts), publishing to
 * application channels (durable: an entry of the event log, written in one transaction), the log's position for
 * snapshots, and subscription tokens signed with the secret the nodes share. `conveyor.live` is this; the
 * WebSocket and SSE transports (src/realtime) use it and nothing else of the node.
 */
import { isAppChannel, parseChannel, type Channel } from "../core/channels.ts";
import { ConfigError, ValidationError } from "../core/errors.ts";
import { type LiveGrant, type LiveTokenRefusal, signLiveToken, verifyLiveToken } from "../core/live-token.ts";
import { isJson } from "../core/task-input.ts";
import type { Json, LogEvent } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { LiveFeed, LivePosition, LiveSubscription } from "./live-feed.ts";
import type { Notifier } from "./notifier.ts";

/** Largest application message, as JSON text. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export type LiveOptions = {
  nodeId: string;
  store: Store;
  feed: LiveFeed;
  notifier: Notifier;
  /** Before any store work: the store migrated (Conveyor's #ready). */
  ready: () => Promise<void>;
  /** Signs and checks subscription tokens; null: none can be made or accepted. */
  secret: string | null;
};

export class Live {
  readonly nodeId: string;
  readonly #options: LiveOptions;
  readonly verifyToken: ((token: string) => LiveGrant | LiveTokenRefusal) | null;

  constructor(options: LiveOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
    const { secret } = options;
    this.verifyToken = secret === null ? null : (token) => verifyLiveToken(secret, token);
  }

  /** The offset up to which this node has handed out live events. */
  get cursor(): number {
    return this.#options.feed.cursor;
  }

  async epoch(): Promise<string> {
    await this.#options.ready();
    return this.#options.feed.epoch();
  }

  /** The log's position now; a read made after this call is consistent with it, or with a later one. */
  async position(): Promise<LivePosition> {
    await this.#options.ready();
    return this.#options.feed.position();
  }

  /**
   * Follow `channels` (docs/live-protocol.md) from `since` (or from now): `listener` gets every matching event in
   * offset order, the gap first. Resolves once the subscription is in place; `recovered` false means the gap could
   * not be replayed whole, and the subscription is live from its `position`.
   */
  async subscribe(
    channels: string[],
    options: { since?: LivePosition | undefined },
    listener: (event: LogEvent) => void,
  ): Promise<LiveSubscription> {
    const parsed: Channel[] = [];
    for (const name of channels) {
      const channel = parseChannel(name);
      if (channel === null) {
        throw new ValidationError(`${JSON.stringify(name).slice(0, 210)} is not a channel name`, [
          { in: "channels", field: name, message: "is not a channel name" },
        ]);
      }
      parsed.push(channel);
    }
    if (parsed.length === 0) throw new ValidationError("name at least one channel");
    await this.#options.ready();
    return this.#options.feed.subscribe(parsed, options, listener);
  }

  /**
   * The events of `channels` as an async iterator: `for await (const event of conveyor.live.stream(["tasks"]))`.
   * Ends when `signal` aborts. Throws (on the next read) when the gap since `since` cannot be replayed.
   */
  async *stream(
    channels: string[],
    options: { since?: LivePosition; signal?: AbortSignal } = {},
  ): AsyncGenerator<LogEvent> {
    const queue: LogEvent[] = [];
    let wake: (() => void) | null = null;
    const subscription = await this.subscribe(channels, { since: options.since }, (event) => {
      queue.push(event);
      wake?.();
    });
    const aborted = () => wake?.();
    options.signal?.addEventListener("abort", aborted, { once: true });
    try {
      if (!subscription.recovered) throw new Error(`the stream could not be recovered: ${subscription.reason}`);
      while (!options.signal?.aborted) {
        const event = queue.shift();
        if (event !== undefined) yield event;
        else await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      options.signal?.removeEventListener("abort", aborted);
      subscription.close();
    }
  }

  /** Appends `data` to application channel `channel`: durable and replayable like a task event. */
  async publish(channel: string, data: Json): Promise<void> {
    if (!isAppChannel(channel)) {
      throw new ValidationError(`${JSON.stringify(channel).slice(0, 210)} is not an application channel name`);
    }
    if (!isJson(data) || JSON.stringify(data).length > MAX_MESSAGE_BYTES) {
      throw new ValidationError(`a message must be JSON of at most ${MAX_MESSAGE_BYTES} bytes`);
    }
    await this.#options.ready();
    await this.#options.store.eventAppend({ events: [{ type: "message", channel, data }], now: new Date() });
    this.#options.notifier.eventsWritten();
  }

  /**
   * A subscription token for the browser of one of your users: it may follow `channels` and publish to `publish`
   * (application channel names, or prefixes ending in `*`), for `ttlMs`.
   */
  token(grant: { channels: string[]; publish?: string[]; ttlMs: number }): string {
    const { secret } = this.#options;
    if (secret === null)
      throw new ConfigError("subscription tokens need a secret: set liveSecret or CONVEYOR_LIVE_SECRET");
    return signLiveToken(secret, grant);
  }
}
