/**
 * Subscriptions to channels of the event log (core/channels.ts), for this process and for the transports of
 * src/realtime: a subscriber names channels and, optionally, a position to start after, and gets every matching
 * event in offset order: first the gap, read from the store, then live events from the node's event feed, with
 * no seam (each subscriber keeps its own position and skips what it has seen), or `recovered: false` when the gap
 * cannot be replayed whole (docs/live-protocol.md). One tail of the log per node (the event feed) serves every
 * subscriber; events are handed out through an index by channel, so a subscriber costs nothing for events it
 * does not follow.
 */
import { type Channel, DISPATCH_CHANNEL } from "../core/channels.ts";
import type { LogEvent } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { EventFeed } from "./event-feed.ts";

export type LivePosition = { epoch: string; offset: number };

export type NotRecovered = "epoch_changed" | "offset_ahead" | "offset_pruned" | "gap_too_large";

export type LiveSubscription = {
  /** False when the gap since the position asked for could not be replayed: reload the state. */
  readonly recovered: boolean;
  readonly reason: NotRecovered | null;
  /** The position the subscription's events follow. */
  readonly position: LivePosition;
  /** The last offset handed to (or skipped for) it: it is live up to there. */
  readonly offset: number;
  close(): void;
};

export type LiveListener = (event: LogEvent) => void;

/** Log events read per store query while catching up. */
const CATCH_UP_PAGE = 1000;
/** Task types remembered for `type:` channels. */
const TYPE_CACHE_SIZE = 100_000;

type Subscriber = {
  readonly keys: string[];
  readonly listener: LiveListener;
  /** The last offset handed to (or skipped for) this subscriber. */
  position: number;
  /** Live events held back while the gap is read from the store. */
  buffer: LogEvent[] | null;
  closed: boolean;
};

export class LiveFeed {
  readonly #store: Store;
  readonly #feed: EventFeed;
  readonly #replayLimit: number;
  readonly #onError: (error: unknown) => void;
  readonly #byKey = new Map<string, Set<Subscriber>>();
  /** Task types seen in task.created events or looked up, for `type:` channels; oldest first. */
  readonly #types = new Map<number, string>();
  #typeSubscribers = 0;
  #epoch: Promise<string> | null = null;
  #unsubscribeFeed: (() => void) | null = null;
  #starting: Promise<void> | null = null;
  /** Batches of live events, dispatched one after another (a type look-up may make one wait). */
  #dispatching: Promise<void> = Promise.resolve();
  /** The last offset the feed handed over. */
  #cursor = 0;

  constructor(store: Store, feed: EventFeed, options: { replayLimit: number; onError: (error: unknown) => void }) {
    this.#store = store;
    this.#feed = feed;
    this.#replayLimit = options.replayLimit;
    this.#onError = options.onError;
  }

  /** The log's position now: what a snapshot read after this call is consistent with (at least). */
  async position(): Promise<LivePosition> {
    const [epoch, offset] = await Promise.all([this.epoch(), this.#store.eventLastOffset()]);
    return { epoch, offset };
  }

  epoch(): Promise<string> {
    this.#epoch ??= this.#store.eventLogInfo().then(
      (info) => info.epoch,
      (error: unknown) => {
        this.#epoch = null;
        throw error;
      },
    );
    return this.#epoch;
  }

  /** The offset up to which live events have been handed out: every subscriber that is live has seen it. */
  get cursor(): number {
    return this.#cursor;
  }

  async subscribe(
    channels: Channel[],
    options: { since?: LivePosition | undefined },
    listener: LiveListener,
  ): Promise<LiveSubscription> {
    // The subscriber is counted before anything is awaited: it holds the feed. Added after the reads below, it
    // could come after the node's last other subscriber had left meanwhile and stopped the feed, and it would then
    // hear no live event at all. Its position is set once known; until it goes live, events are held in its buffer.
    const subscriber: Subscriber = {
      keys: channels.map(channelKey),
      listener,
      position: 0,
      buffer: [],
      closed: false,
    };
    this.#add(subscriber);
    const close = () => this.#remove(subscriber);
    let info: { epoch: string; oldestOffset: number; lastOffset: number };
    let reason: NotRecovered | null;
    let from: number;
    try {
      await this.#startFeed();
      info = await this.#store.eventLogInfo();
      const live = Math.max(this.#cursor, 0);
      reason = options.since === undefined ? null : this.#judge(options.since, info);
      from = options.since !== undefined && reason === null ? options.since.offset : live;
      subscriber.position = from;
      if (from < live) await this.#catchUp(subscriber, live);
      this.#goLive(subscriber);
    } catch (error) {
      close();
      throw error;
    }
    return {
      recovered: options.since === undefined || reason === null,
      reason: options.since === undefined ? null : reason,
      position: { epoch: info.epoch, offset: from },
      get offset() {
        return subscriber.position;
      },
      close,
    };
  }

  #judge(since: LivePosition, info: { epoch: string; oldestOffset: number; lastOffset: number }): NotRecovered | null {
    if (since.epoch !== info.epoch) return "epoch_changed";
    if (since.offset > info.lastOffset) return "offset_ahead";
    if (since.offset < info.oldestOffset - 1) return "offset_pruned";
    if (info.lastOffset - since.offset > this.#replayLimit) return "gap_too_large";
    return null;
  }

  /** Hands the subscriber the events between its position and `until` (or further), from the store. */
  async #catchUp(subscriber: Subscriber, until: number): Promise<void> {
    while (!subscriber.closed && subscriber.position < until) {
      const events = await this.#store.eventList({ after: subscriber.position, limit: CATCH_UP_PAGE });
      if (events.length === 0) return;
      await this.#learnTypes(events, [subscriber]);
      for (const event of events) this.#deliver(subscriber, event);
      if (events.length < CATCH_UP_PAGE) return;
    }
  }

  /** Hands over what came live meanwhile (skipping what the store read gave already) and joins the live path. */
  #goLive(subscriber: Subscriber): void {
    const held = subscriber.buffer ?? [];
    subscriber.buffer = null;
    for (const event of held) this.#deliver(subscriber, event);
  }

  #deliver(subscriber: Subscriber, event: LogEvent): void {
    if (subscriber.closed || event.offset <= subscriber.position) return;
    subscriber.position = event.offset;
    if (!this.#matches(subscriber, event)) return;
    try {
      subscriber.listener(event);
    } catch (error) {
      this.#onError(error);
    }
  }

  #matches(subscriber: Subscriber, event: LogEvent): boolean {
    const keys = this.#keysOf(event);
    return subscriber.keys.some((key) => keys.includes(key));
  }

  /** The channel keys an event belongs to. */
  #keysOf(event: LogEvent): string[] {
    if (event.channel !== null) {
      // A topic's dispatch events are on `dispatch` too: written once, heard on both.
      if (event.channel.startsWith("topic:")) return [DISPATCH_CHANNEL, event.channel];
      return [SYSTEM_CHANNELS.has(event.channel) ? event.channel : `app:${event.channel}`];
    }
    const keys = ["tasks", `task:${event.taskId}`, `queue:${event.queue}`];
    const type = this.#types.get(event.taskId);
    if (type !== undefined) keys.push(`type:${type}`);
    return keys;
  }

  async #startFeed(): Promise<void> {
    if (this.#unsubscribeFeed !== null) return;
    this.#starting ??= (async () => {
      this.#unsubscribeFeed = await this.#feed.subscribe((event) => this.#onLive(event));
      // Live events are those after the feed's own start; earlier ones are read from the store.
      this.#cursor = Math.max(this.#cursor, this.#feed.cursor ?? 0);
    })().finally(() => (this.#starting = null));
    await this.#starting;
  }

  /** Live events come one by one, in order; they are dispatched in that order, a batch per turn. */
  #onLive(event: LogEvent): void {
    this.#cursor = Math.max(this.#cursor, event.offset);
    this.#dispatching = this.#dispatching.then(() => this.#dispatch(event)).catch(this.#onError);
  }

  async #dispatch(event: LogEvent): Promise<void> {
    const keys = this.#keysOf(event);
    if (event.channel === null && this.#typeSubscribers > 0 && !this.#types.has(event.taskId)) {
      await this.#learnTypes([event], null);
      keys.push(...this.#keysOf(event).filter((key) => key.startsWith("type:")));
    }
    const seen = new Set<Subscriber>();
    for (const key of keys) {
      for (const subscriber of this.#byKey.get(key) ?? []) {
        if (seen.has(subscriber)) continue;
        seen.add(subscriber);
        if (subscriber.buffer !== null) subscriber.buffer.push(event);
        else this.#deliver(subscriber, event);
      }
    }
  }

  /** Learns the types of the events' tasks (from task.created, else from the store) when someone follows a type. */
  async #learnTypes(events: LogEvent[], subscribers: Subscriber[] | null): Promise<void> {
    const wanted = subscribers === null ? this.#typeSubscribers > 0 : subscribers.some((s) => s.keys.some(isTypeKey));
    const missing = new Set<number>();
    for (const event of events) {
      if (event.channel !== null) continue;
      if (event.type === "task.created") this.#remember(event.taskId, String((event.data as { type?: unknown })?.type));
      else if (wanted && !this.#types.has(event.taskId)) missing.add(event.taskId);
    }
    if (missing.size === 0) return;
    for (const { id, type } of await this.#store.taskStates({ ids: [...missing] })) this.#remember(id, type);
  }

  #remember(taskId: number, type: string): void {
    this.#types.delete(taskId);
    this.#types.set(taskId, type);
    if (this.#types.size > TYPE_CACHE_SIZE) this.#types.delete(this.#types.keys().next().value!);
  }

  #add(subscriber: Subscriber): void {
    for (const key of subscriber.keys) {
      let set = this.#byKey.get(key);
      if (set === undefined) {
        set = new Set();
        this.#byKey.set(key, set);
      }
      set.add(subscriber);
    }
    if (subscriber.keys.some(isTypeKey)) this.#typeSubscribers++;
  }

  #remove(subscriber: Subscriber): void {
    if (subscriber.closed) return;
    subscriber.closed = true;
    for (const key of subscriber.keys) {
      const set = this.#byKey.get(key);
      set?.delete(subscriber);
      if (set?.size === 0) this.#byKey.delete(key);
    }
    if (subscriber.keys.some(isTypeKey)) this.#typeSubscribers--;
    if (this.#byKey.size === 0 && this.#unsubscribeFeed !== null) {
      this.#unsubscribeFeed();
      this.#unsubscribeFeed = null;
    }
  }
}

/** Channels of the log's own events (not an application's): their key is their name. */
const SYSTEM_CHANNELS = new Set(["nodes", "stats", DISPATCH_CHANNEL]);

function isTypeKey(key: string): boolean {
  return key.startsWith("type:");
}

function channelKey(channel: Channel): string {
  switch (channel.kind) {
    case "tasks":
      return "tasks";
    case "nodes":
    case "stats":
    case "dispatch":
      return channel.kind;
    case "topic":
      return `topic:${channel.topic}`;
    case "task":
      return `task:${channel.id}`;
    case "queue":
      return `queue:${channel.queue}`;
    case "type":
      return `type:${channel.type}`;
    case "app":
      return `app:${channel.name}`;
  }
}
