/**
 * Finds tasks left `running` by a node that stopped heartbeating (killed, frozen, cut off) and puts them
 * back in their queue, counting a stall; a task that keeps killing its node fails instead. The store does
 * it in one transaction guarded by attempt, so two rescuers racing cannot rescue a task twice.
 */
import type { Store } from "../store/store.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";
import { sleep } from "./wakeup.ts";
import type { Service } from "./service.ts";

export type RescuerOptions = {
  /** This node: its own tasks are never rescued. */
  node: string;
  /** False while this node's own heartbeats are late; then it does not judge others (see Heartbeat). */
  canJudge: () => boolean;
  /**
   * Time between two passes. A pass finds a dead node's tasks at most this long after its dead time, so it is a
   * part of the failover time: a quarter of a heartbeat interval (node-services.ts), not a whole one.
   */
  intervalMs: number;
  /** A node silent for this long is dead. */
  deadAfterMs: number;
  maxStalls: number;
};

export class Rescuer implements Service {
  readonly name = "rescuer";
  readonly #store: Store;
  readonly #notifier: Notifier;
  readonly #options: RescuerOptions;
  readonly #events: NodeEvents;

  constructor(store: Store, notifier: Notifier, options: RescuerOptions, events: NodeEvents) {
    this.#store = store;
    this.#notifier = notifier;
    this.#options = options;
    this.#events = events;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.rescueOnce();
      await sleep(this.#options.intervalMs, signal);
    }
  }

  async rescueOnce(now = new Date()): Promise<number> {
    if (!this.#options.canJudge()) return 0;
    const outcomes = await this.#store.taskRescue({
      rescuer: this.#options.node,
      deadBefore: new Date(now.getTime() - this.#options.deadAfterMs),
      maxStalls: this.#options.maxStalls,
      now,
    });
    if (outcomes.length === 0) return 0;
    this.#notifier.queuesReady(new Set(outcomes.filter((o) => o.outcome === "retried").map((o) => o.task.queue)), {
      logged: true,
    });
    for (const { task, outcome } of outcomes) this.#events.emit("task:rescued", { task, outcome, from: task.node });
    await this.#store.nodePrune({ before: new Date(now.getTime() - this.#options.deadAfterMs * 10) });
    return outcomes.length;
  }
}
