/**
 * The retry timer: gives a task to every delivery that is scheduled and due (a retry, a scheduled message, a held
 * delivery released, a replay), a batch per transaction, and sleeps until the next one is due by dispatch's clock.
 * It runs on every node; a delivery is promoted once (the store skips rows another node is promoting), and a node
 * that schedules a delivery sooner than the others expect rings them through the bus (`scheduled`), as the task
 * scheduler does. A backstop poll catches what a lost ring would miss.
 */
import type { Bus } from "../bus/bus.ts";
import type { Notifier } from "../runtime/notifier.ts";
import type { Service } from "../runtime/service.ts";
import { Wakeup } from "../runtime/wakeup.ts";
import type { DeliveryTaskTemplate } from "../store/dispatch-store.ts";
import type { Store } from "../store/store.ts";
import type { Clock } from "./clock.ts";

const PROMOTE_BATCH = 500;

export type RetryTimerDeps = {
  store: Store;
  bus: Bus;
  notifier: Notifier;
  clock: Clock;
  task: DeliveryTaskTemplate;
  pollIntervalMs: number;
};

export class RetryTimer implements Service {
  readonly name = "dispatch-retry-timer";
  readonly #deps: RetryTimerDeps;
  readonly #wakeup = new Wakeup();
  #nextAt = Number.POSITIVE_INFINITY;

  constructor(deps: RetryTimerDeps) {
    this.#deps = deps;
  }

  /** A delivery became due at `at`: wake up now if that is sooner than the timer's next look. */
  due(at: Date): void {
    if (at.getTime() < this.#nextAt) this.#wakeup.ring();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { bus, clock, store, pollIntervalMs } = this.#deps;
    const unsubscribe = bus.subscribe("scheduled", ({ at }) => this.due(new Date(at)));
    try {
      while (!signal.aborted) {
        await this.promoteDue();
        const next = await store.dispatch.deliveryNextDueAt();
        this.#nextAt = next === null ? Number.POSITIVE_INFINITY : next.getTime();
        const napping = new AbortController();
        const stop = () => napping.abort();
        signal.addEventListener("abort", stop, { once: true });
        try {
          const waits = [this.#wakeup.wait(pollIntervalMs, napping.signal)];
          if (next !== null) waits.push(clock.sleepUntil(next, napping.signal));
          await Promise.race(waits);
        } finally {
          napping.abort();
          signal.removeEventListener("abort", stop);
        }
      }
    } finally {
      unsubscribe();
    }
  }

  /** Promotes every delivery due now, a batch per transaction; returns how many. */
  async promoteDue(): Promise<number> {
    const { store, clock, notifier, task } = this.#deps;
    let promoted = 0;
    for (;;) {
      const tasks = await store.dispatch.deliveryPromoteDue({ now: clock.now(), limit: PROMOTE_BATCH, task });
      promoted += tasks.length;
      if (tasks.length > 0) notifier.tasksWritten(tasks);
      if (tasks.length < PROMOTE_BATCH) return promoted;
    }
  }
}
