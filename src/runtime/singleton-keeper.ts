/**
 * Keeps one instance of each singleton task type alive cluster-wide (the seed's "database cleaner"): on
 * the leader, every interval, it enqueues the type's task under the key `singleton:<type>`. While a task
 * with that key is active the enqueue returns it and adds nothing; once it has finished (or failed after
 * killing its nodes too often), a new one is added. When the node running it dies, the rescuer puts it
 * back in the queue and a surviving node claims it.
 */
import type { Notifier } from "./notifier.ts";
import { normalizeTaskInput, type TaskDefaults } from "../core/task-input.ts";
import type { Store } from "../store/store.ts";
import { sleep } from "./wakeup.ts";
import type { Service } from "./service.ts";

export function singletonKey(type: string): string {
  return `singleton:${type}`;
}

export class SingletonKeeper implements Service {
  readonly name = "singletons";
  readonly #store: Store;
  readonly #notifier: Notifier;
  readonly #types: string[];
  readonly #defaults: (type: string) => TaskDefaults;
  readonly #intervalMs: number;

  constructor(
    store: Store,
    notifier: Notifier,
    options: { types: string[]; defaults: (type: string) => TaskDefaults; intervalMs: number },
  ) {
    this.#store = store;
    this.#notifier = notifier;
    this.#types = options.types;
    this.#defaults = options.defaults;
    this.#intervalMs = options.intervalMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.ensure();
      await sleep(this.#intervalMs, signal);
    }
  }

  async ensure(now = new Date()): Promise<void> {
    if (this.#types.length === 0) return;
    const tasks = this.#types.map((type) => normalizeTaskInput({ type, key: singletonKey(type) }, this.#defaults, now));
    const outcomes = await this.#store.taskInsertMany({ tasks, now });
    const created = outcomes.filter((o) => o.created).map((o) => o.task);
    if (created.length > 0) this.#notifier.tasksWritten(created);
  }
}
