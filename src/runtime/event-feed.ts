/**
 * Tails the store's event log and hands new events to local listeners: `conveyor.result()` waiting for a
 * task, and later the live stream. It reads only while someone listens, when the bus rings (this node or,
 * in a cluster, another one wrote events) or on the slow backstop poll, so tasks finished by any process
 * on the same store are seen.
 */
import type { LogEvent } from "../core/task.ts";
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import type { Service } from "./service.ts";
import { Wakeup } from "./wakeup.ts";

export type EventListener = (event: LogEvent) => void;

const READ_BATCH = 1000;

export class EventFeed implements Service {
  readonly name = "event-feed";
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #pollIntervalMs: number;
  readonly #listeners = new Set<EventListener>();
  readonly #wakeup = new Wakeup();
  /** Offset of the last event handed out; null while nobody listens (the feed then reads nothing). */
  #cursor: number | null = null;
  #starting: Promise<number> | null = null;

  constructor(store: Store, bus: Bus, pollIntervalMs: number) {
    this.#store = store;
    this.#bus = bus;
    this.#pollIntervalMs = pollIntervalMs;
  }

  /**
   * Start receiving every event committed after this call resolves. Whatever committed before is the
   * caller's to read from the store, which is what makes "read state, then wait for changes" race-free.
   */
  async subscribe(listener: EventListener): Promise<() => void> {
    // Listeners join at once, and share one read of the starting offset: two subscribers arriving together
    // must not move the cursor past events the first was promised.
    this.#listeners.add(listener);
    if (this.#cursor === null) {
      this.#starting ??= this.#store.eventLastOffset().finally(() => (this.#starting = null));
      const offset = await this.#starting;
      this.#cursor ??= offset;
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#cursor = null;
    };
  }

  /** The offset of the last event handed out (or where listeners started); null while nobody listens. */
  get cursor(): number | null {
    return this.#cursor;
  }

  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.#bus.subscribe("events", () => this.#wakeup.ring());
    try {
      while (!signal.aborted) {
        await this.#readNew();
        await this.#wakeup.wait(this.#pollIntervalMs, signal);
      }
    } finally {
      unsubscribe();
    }
  }

  async #readNew(): Promise<void> {
    while (this.#cursor !== null && this.#listeners.size > 0 && this.#starting === null) {
      const events = await this.#store.eventList({ after: this.#cursor, limit: READ_BATCH });
      if (this.#cursor === null) return;
      for (const event of events) {
        this.#cursor = event.offset;
        for (const listener of this.#listeners) listener(event);
      }
      if (events.length < READ_BATCH) return;
    }
  }
}
