/**
 * Applies the cluster-wide queue settings of the store to this node's workers: a queue's concurrency set through
 * the API (`PUT /api/queues/:name/concurrency`) takes effect on every node within a heartbeat, without a restart.
 * A queue with no setting runs at the node's own concurrency (its options).
 */
import type { Store } from "../store/store.ts";
import type { Service } from "./service.ts";
import { sleep } from "./wakeup.ts";
import type { WorkerPool } from "./worker-pool.ts";

export class QueueSettings implements Service {
  readonly name = "queue-settings";
  readonly #store: Store;
  readonly #pool: WorkerPool;
  readonly #intervalMs: number;
  /** Each worker's concurrency from the node's options, for a queue whose setting is cleared. */
  readonly #own: Map<string, number>;

  constructor(store: Store, pool: WorkerPool, intervalMs: number) {
    this.#store = store;
    this.#pool = pool;
    this.#intervalMs = intervalMs;
    this.#own = new Map(pool.workers.map((worker) => [worker.options.queue, worker.options.concurrency]));
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.apply();
      await sleep(this.#intervalMs, signal);
    }
  }

  /** Reads the settings and applies them now. */
  async apply(): Promise<void> {
    const settings = new Map((await this.#store.queueStats()).map((q) => [q.queue, q.concurrency]));
    for (const worker of this.#pool.workers) {
      const queue = worker.options.queue;
      worker.setConcurrency(settings.get(queue) ?? this.#own.get(queue)!);
    }
  }
}
