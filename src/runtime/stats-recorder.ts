/**
 * This node's task throughput and timings, per 5-second bucket: completions, failures and retries it recorded, the
 * time each attempt ran (start to end) and waited (due to started), as histograms (core/stats.ts). A bucket with
 * anything in it is written to the store when it closes (the dashboard's charts read the last minutes of every
 * node from there) and appended to the log's `stats` channel (so that open dashboards update without polling). An
 * idle node writes nothing.
 */
import { emptyHistogram, histogramAdd, STATS_BUCKET_MS } from "../core/stats.ts";
import type { Task } from "../core/task.ts";
import type { Store, TaskStatsBucket } from "../store/store.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";
import type { Service } from "./service.ts";
import { sleep } from "./wakeup.ts";

export class StatsRecorder implements Service {
  readonly name = "stats";
  readonly #store: Store;
  readonly #notifier: Notifier;
  readonly #events: NodeEvents;
  readonly #node: string;
  #bucket: TaskStatsBucket;

  constructor(store: Store, notifier: Notifier, events: NodeEvents, node: string) {
    this.#store = store;
    this.#notifier = notifier;
    this.#events = events;
    this.#node = node;
    this.#bucket = this.#fresh(Date.now());
  }

  async run(signal: AbortSignal): Promise<void> {
    const started = ({ task }: { task: Task }) => {
      if (task.startedAt !== null)
        histogramAdd(this.#bucket.wait, Math.max(0, task.startedAt.getTime() - task.runAt.getTime()));
    };
    const ended =
      (counter: "completed" | "failed" | "retried") =>
      ({ task }: { task: Task }) => {
        this.#bucket[counter]++;
        if (task.startedAt !== null) histogramAdd(this.#bucket.run, Math.max(0, Date.now() - task.startedAt.getTime()));
      };
    const completed = ended("completed");
    const failed = ended("failed");
    const retried = ended("retried");
    this.#events.on("task:started", started);
    this.#events.on("task:completed", completed);
    this.#events.on("task:failed", failed);
    this.#events.on("task:retried", retried);
    try {
      while (!signal.aborted) {
        await sleep(this.#bucket.at.getTime() + STATS_BUCKET_MS - Date.now(), signal);
        await this.#close(Date.now());
      }
    } finally {
      this.#events.off("task:started", started);
      this.#events.off("task:completed", completed);
      this.#events.off("task:failed", failed);
      this.#events.off("task:retried", retried);
      await this.#close(Date.now()).catch(() => {});
    }
  }

  /** Writes the current bucket if it holds anything, and starts the next one. */
  async #close(now: number): Promise<void> {
    const bucket = this.#bucket;
    this.#bucket = this.#fresh(now);
    const busy = bucket.completed + bucket.failed + bucket.retried > 0 || bucket.wait.some((n) => n > 0);
    if (!busy) return;
    await this.#store.statsAppend({ bucket });
    const { at, node, completed, failed, retried, run, wait } = bucket;
    await this.#store.eventAppend({
      events: [
        {
          type: "stats.bucket",
          channel: "stats",
          data: { at: at.toISOString(), node, completed, failed, retried, run, wait },
        },
      ],
      now: new Date(now),
    });
    this.#notifier.eventsWritten();
  }

  /** The bucket that holds `now`: buckets start on multiples of 5 s, the same on every node. */
  #fresh(now: number): TaskStatsBucket {
    const at = new Date(now - (now % STATS_BUCKET_MS));
    return { at, node: this.#node, completed: 0, failed: 0, retried: 0, run: emptyHistogram(), wait: emptyHistogram() };
  }
}
