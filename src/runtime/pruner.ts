/**
 * Deletes finished tasks and old events past their retention, in batches so that no single transaction
 * holds the store for long, and task statistics older than the dashboard shows (STATS_RETENTION_MS).
 */
import type { Store } from "../store/store.ts";
import type { Service } from "./service.ts";
import { sleep } from "./wakeup.ts";

const PRUNE_BATCH = 1000;

/** The longest window the dashboard charts (GET /api/stats?window=3600). */
export const STATS_RETENTION_MS = 3600_000;

export type PrunerOptions = { intervalMs: number; taskRetentionMs: number; eventRetentionMs: number };

export class Pruner implements Service {
  readonly name = "pruner";
  readonly #store: Store;
  readonly #options: PrunerOptions;

  constructor(store: Store, options: PrunerOptions) {
    this.#store = store;
    this.#options = options;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.pruneOnce();
      await sleep(this.#options.intervalMs, signal);
    }
  }

  /** One full pass; returns how many tasks and event-log entries (one per transaction) it deleted. */
  async pruneOnce(now = new Date()): Promise<{ tasks: number; eventEntries: number }> {
    const tasksBefore = new Date(now.getTime() - this.#options.taskRetentionMs);
    const eventsBefore = new Date(now.getTime() - this.#options.eventRetentionMs);
    let tasks = 0;
    let eventEntries = 0;
    for (let n = PRUNE_BATCH; n === PRUNE_BATCH; tasks += n)
      n = await this.#store.taskPrune({ before: tasksBefore, limit: PRUNE_BATCH });
    for (let n = PRUNE_BATCH; n === PRUNE_BATCH; eventEntries += n)
      n = await this.#store.eventPrune({ before: eventsBefore, limit: PRUNE_BATCH });
    await this.#store.statsPrune({ before: new Date(now.getTime() - STATS_RETENTION_MS) });
    return { tasks, eventEntries };
  }
}
