/**
 * This node's queue workers, one per queue it has handlers for, and what involves them together: an insert that
 * starts tasks at once in the slots they have free, and the graceful shutdown that waits for their tasks.
 *
 * Straight into an idle slot: when a started node enqueues a ready task for a queue it serves, with a slot free
 * and nothing known to wait in the queue, the insert itself starts it on this node (one transaction from
 * enqueue to handler, no claim). The pool reserves the slots before the insert and hands each worker back the
 * tasks the store started for it (or the slots it did not use).
 */
import type { NormalizedTaskInput } from "../core/task-input.ts";
import type { Store, TaskInsertOutcome } from "../store/store.ts";
import type { Execution } from "./execution.ts";
import type { QueueWorker } from "./queue-worker.ts";

export class WorkerPool {
  readonly workers: readonly QueueWorker[];
  readonly #byQueue: Map<string, QueueWorker>;
  readonly #store: Store;
  readonly #nodeId: string;
  /** Stalls a task may count before it fails (the rescuer's rule, for the tasks a fence stopped too). */
  readonly #maxStalls: number;

  constructor(store: Store, nodeId: string, workers: QueueWorker[], maxStalls: number) {
    this.#store = store;
    this.#nodeId = nodeId;
    this.#maxStalls = maxStalls;
    this.workers = workers;
    this.#byQueue = new Map(workers.map((worker) => [worker.options.queue, worker]));
  }

  /** Inserts the tasks; those this node has idle slots for start on it in the same transaction. */
  async insert(tasks: NormalizedTaskInput[], now: Date): Promise<TaskInsertOutcome[]> {
    const reserved = this.#reserveSlots(tasks, now);
    if (reserved.size === 0) return this.#store.taskInsertMany({ tasks, now });
    let outcomes: TaskInsertOutcome[];
    try {
      outcomes = await this.#store.taskInsertMany({
        tasks,
        now,
        startOn: { node: this.#nodeId, indexes: [...reserved.keys()] },
      });
    } catch (error) {
      for (const worker of reserved.values()) worker.unreserve();
      throw error;
    }
    for (const [index, worker] of reserved) {
      const { task, created } = outcomes[index]!;
      if (created && task.state === "running" && task.node === this.#nodeId) worker.adopt(task);
      else worker.unreserve();
    }
    return outcomes;
  }

  /** Inputs (by index) that a worker has an idle slot for, each slot reserved. */
  #reserveSlots(tasks: NormalizedTaskInput[], now: Date): Map<number, QueueWorker> {
    const reserved = new Map<number, QueueWorker>();
    tasks.forEach((task, index) => {
      if (task.runAt.getTime() > now.getTime()) return;
      const worker = this.#byQueue.get(task.queue);
      if (worker?.reserveSlot(task.type)) reserved.set(index, worker);
    });
    return reserved;
  }

  /** Resolves when no task runs on this node, or at `deadline`; returns the executions still running then. */
  async settle(deadline: number): Promise<Execution[]> {
    const left = await Promise.all(this.workers.map((worker) => worker.settle(Math.max(0, deadline - Date.now()))));
    return left.flat();
  }

  /** Self-fencing (fence.ts): every worker stops claiming and stops its attempts. Returns the ids stopped. */
  fence(graceMs: number): number[] {
    return this.workers.flatMap((worker) => worker.fence(graceMs));
  }

  /**
   * Hands back to the store the tasks the workers abandoned when the node fenced: those still running on this
   * node go back to their queue counting a stall, as the leader's rescue would have (a task past its stalls or
   * attempts fails: one whose run blocks the node's event loop past the fence's threshold would otherwise be
   * stopped and handed back for ever); those the leader rescued meanwhile are no longer this node's and stay as
   * they are. Returns the ids handed back. Throws if the store refused.
   */
  async releaseAbandoned(now: Date): Promise<number[]> {
    const released: number[] = [];
    // Until none is left: a claim in flight may add one while the release runs.
    for (;;) {
      const ids = this.workers.flatMap((worker) => worker.abandoned());
      if (ids.length === 0) return released;
      const outcomes = await this.#store.taskRescue({
        rescuer: this.#nodeId,
        deadBefore: now,
        maxStalls: this.#maxStalls,
        now,
        abandoned: ids,
      });
      released.push(...outcomes.map(({ task }) => task.id));
      for (const worker of this.workers) worker.forget(ids);
    }
  }

  /** Claim again: call right after releaseAbandoned(), in the same turn. */
  unfence(): void {
    for (const worker of this.workers) worker.unfence();
  }

  /** What the node reports about its queues (its heartbeat carries it to /api/nodes). */
  info(): { queue: string; concurrency: number; running: number }[] {
    return this.workers.map((w) => ({
      queue: w.options.queue,
      concurrency: w.options.concurrency,
      running: w.runningCount,
    }));
  }
}
