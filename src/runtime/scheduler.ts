/**
 * Promotes delayed and retrying tasks (`scheduled`) to `queued` when their time comes, and wakes their
 * queues. It sleeps until the earliest runAt it knows of, so a 50 ms delay runs 50 ms later, not at the
 * next poll; a task scheduled sooner than that rings it awake through the bus.
 */
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import type { Notifier } from "./notifier.ts";
import type { Service } from "./service.ts";
import { Wakeup } from "./wakeup.ts";

const PROMOTE_BATCH = 1000;

export class Scheduler implements Service {
  readonly name = "scheduler";
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #notifier: Notifier;
  readonly #pollIntervalMs: number;
  readonly #wakeup = new Wakeup();
  #nextAt = Infinity;

  /** `bus` says when a task is scheduled sooner; `notifier` tells the queues of the tasks this promotes. */
  constructor(store: Store, bus: Bus, notifier: Notifier, pollIntervalMs: number) {
    this.#store = store;
    this.#bus = bus;
    this.#notifier = notifier;
    this.#pollIntervalMs = pollIntervalMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.#bus.subscribe("scheduled", ({ at }) => {
      if (at < this.#nextAt) this.#wakeup.ring();
    });
    try {
      while (!signal.aborted) {
        await this.#promoteDue();
        const next = await this.#store.taskNextRunAt();
        this.#nextAt = next === null ? Infinity : next.getTime();
        await this.#wakeup.wait(Math.min(this.#pollIntervalMs, this.#nextAt - Date.now()), signal);
      }
    } finally {
      unsubscribe();
    }
  }

  async #promoteDue(): Promise<void> {
    for (;;) {
      const { count, queues } = await this.#store.taskPromote({ now: new Date(), limit: PROMOTE_BATCH });
      if (count > 0) this.#notifier.queuesReady(queues, { logged: true });
      if (count < PROMOTE_BATCH) return;
    }
  }
}
