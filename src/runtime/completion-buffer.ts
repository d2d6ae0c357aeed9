/**
 * Completions are written in batches by group commit: while one batch is being written, the next one
 * gathers, and is written as soon as the first is done. Under load this turns hundreds of transactions
 * into a few without adding any delay when idle. A crash before a batch commits loses no task: those
 * tasks are still `running` in the store and the rescuer runs them again.
 */
import type { Json } from "../core/task.ts";
import type { Store, TaskCompletion } from "../store/store.ts";
import type { Log } from "./handler.ts";
import { persist } from "./persist.ts";

const MAX_BATCH = 1000;

type Pending = { completion: TaskCompletion; resolve: (completed: boolean) => void };

export class CompletionBuffer {
  readonly #store: Store;
  readonly #logger: Log;
  readonly #onFlushed: (ids: number[]) => void;
  #pending: Pending[] = [];
  #flushing: Promise<void> | null = null;

  constructor(store: Store, logger: Log, onFlushed: (ids: number[]) => void) {
    this.#store = store;
    this.#logger = logger;
    this.#onFlushed = onFlushed;
  }

  /** Resolves true once the completion is committed, false when the attempt was stale. */
  complete(id: number, queue: string, attempt: number, result: Json): Promise<boolean> {
    return new Promise((resolve) => {
      this.#pending.push({ completion: { id, queue, attempt, result }, resolve });
      this.#flushing ??= this.#flush();
    });
  }

  /** Resolves when everything buffered so far is written. */
  async drain(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  async #flush(): Promise<void> {
    // Yield once so that completions settling in the same tick join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#pending.length > 0) {
      const batch = this.#takeBatch();
      const completions = batch.map((entry) => entry.completion);
      const done = new Set(
        await persist(
          "completing tasks",
          () => this.#store.taskComplete({ completions, now: new Date() }),
          this.#logger,
        ),
      );
      for (const entry of batch) entry.resolve(done.has(entry.completion.id));
      if (done.size > 0) this.#onFlushed([...done]);
    }
    this.#flushing = null;
  }

  /**
   * Up to MAX_BATCH pending completions, at most one per task, in the order they came. The store answers with the
   * ids it completed, so a task named twice in one write (a stale attempt's completion beside the live one's) would
   * tell both callers it was theirs; the second waits for the next write instead.
   */
  #takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const ids = new Set<number>();
    const rest: Pending[] = [];
    for (const entry of this.#pending) {
      if (batch.length < MAX_BATCH && !ids.has(entry.completion.id)) {
        ids.add(entry.completion.id);
        batch.push(entry);
      } else {
        rest.push(entry);
      }
    }
    this.#pending = rest;
    return batch;
  }
}
