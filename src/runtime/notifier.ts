/**
 * Rings the bus after a store write, so that the parts of this node and of the others that wait for it look at
 * the store now rather than at their next poll: queue workers for claimable tasks, the scheduler for an earlier
 * run time, event readers for new log entries, the node running a cancelled task. Every write that others may
 * wait for goes through here, and nowhere else rings the bus about tasks.
 */
import type { Bus } from "../bus/bus.ts";
import type { TaskState } from "../core/states.ts";

/** What a written task tells the others: where it can be claimed, or when it becomes due. */
export type WrittenTask = { state: TaskState; queue: string; runAt: Date };

export class Notifier {
  readonly #bus: Bus;

  constructor(bus: Bus) {
    this.#bus = bus;
  }

  /** Tasks were inserted or changed (with their events): wake their queues, or the scheduler for the earliest. */
  tasksWritten(tasks: Iterable<WrittenTask>): void {
    const queues = new Set<string>();
    let earliest = Number.POSITIVE_INFINITY;
    for (const task of tasks) {
      if (task.state === "queued") queues.add(task.queue);
      else if (task.state === "scheduled") earliest = Math.min(earliest, task.runAt.getTime());
    }
    for (const queue of queues) this.#bus.publish("wake", { queue });
    if (earliest !== Number.POSITIVE_INFINITY) this.#bus.publish("scheduled", { at: earliest });
    this.#bus.publish("events", {});
  }

  /** Tasks became claimable in these queues (promoted, rescued, handed back, or their queue resumed). */
  queuesReady(queues: Iterable<string>, { logged }: { logged: boolean }): void {
    for (const queue of queues) this.#bus.publish("wake", { queue });
    if (logged) this.#bus.publish("events", {});
  }

  /** Only events were logged: claims, completions, progress. */
  eventsWritten(): void {
    this.#bus.publish("events", {});
  }

  /** An attempt failed and its task is due again at `runAt`. */
  retryScheduled(runAt: Date): void {
    this.#bus.publish("scheduled", { at: runAt.getTime() });
    this.#bus.publish("events", {});
  }

  /**
   * Another process wrote to the store, which cannot say what: every local queue looks for work, the scheduler
   * for an earlier run time, and event readers for new entries.
   */
  foreignWrite(queues: Iterable<string>): void {
    for (const queue of queues) this.#bus.publish("wake", { queue });
    this.#bus.publish("scheduled", { at: Date.now() });
    this.#bus.publish("events", {});
  }

  /**
   * A task was cancelled in the store. If it was running, the node running it stops it: this one too, since the
   * bus delivers to its own node's subscribers (a microtask later): one route to the handler, wherever it runs.
   */
  taskCancelled(id: number, { wasRunning }: { wasRunning: boolean }): void {
    if (wasRunning) this.#bus.publish("cancel", { id });
    this.#bus.publish("events", {});
  }
}
