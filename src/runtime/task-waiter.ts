/**
 * Waiting for a task to finish, on the event feed, never by polling the task: subscribe first, then read the task
 * (what committed before the subscription is in that read), then wait for its final event. A started node runs
 * the event feed under its supervisor; a node that was never started (it only enqueues and waits) runs the
 * feed's loop itself for as long as someone waits.
 */
import type { Logger } from "pino";
import { NotFoundError, TaskOutcomeError } from "../core/errors.ts";
import { isFinalState } from "../core/states.ts";
import type { Json, LogEvent, Task } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { EventFeed } from "./event-feed.ts";

const FINAL_EVENTS = new Set(["task.completed", "task.failed", "task.cancelled"]);

export type TaskWaiterDeps = {
  store: Store;
  events: EventFeed;
  /** Aborted when the node begins to stop: every wait ends then. */
  stopping: AbortSignal;
  /** Whether the node's supervisor runs the event feed. */
  feedSupervised: () => boolean;
  logger: Logger;
};

export class TaskWaiter {
  readonly #deps: TaskWaiterDeps;
  /** The feed's loop while waits run on a node that is not started. */
  #privateFeed: { controller: AbortController; users: number } | null = null;

  constructor(deps: TaskWaiterDeps) {
    this.#deps = deps;
  }

  /** The task once it has finished, or as it is when `timeoutMs` runs out, `signal` aborts or the node stops. */
  async waitForFinish(id: number, timeoutMs: number, signal?: AbortSignal): Promise<Task | null> {
    const { store, events, stopping } = this.#deps;
    const wake = new AbortController();
    const stops = [signal, stopping].filter((s) => s !== undefined);
    const unsubscribe = await events.subscribe((event: LogEvent) => {
      if (event.taskId === id && FINAL_EVENTS.has(event.type)) wake.abort("finished");
    });
    const release = this.#joinEventFeed();
    const timer = setTimeout(() => wake.abort("timeout"), timeoutMs);
    const stopped = () => wake.abort("stopped");
    for (const stop of stops) stop.addEventListener("abort", stopped, { once: true });
    try {
      const task = await store.taskGet({ id });
      if (task === null || isFinalState(task.state) || stops.some((stop) => stop.aborted)) return task;
      await new Promise((resolve) => wake.signal.addEventListener("abort", resolve, { once: true }));
      // A stopping node may be closing its store: answer with what was read rather than read again.
      return wake.signal.reason === "stopped" ? task : await store.taskGet({ id });
    } finally {
      clearTimeout(timer);
      for (const stop of stops) stop.removeEventListener("abort", stopped);
      unsubscribe();
      release();
    }
  }

  /**
   * The result of a task once it completes. Rejects with a TaskOutcomeError when it fails or is cancelled
   * (task_failed / task_cancelled), or when `timeoutMs` passes first (wait_timeout).
   */
  async result<T = Json>(id: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const task = await this.waitForFinish(id, options.timeoutMs ?? 2 ** 31 - 1, options.signal);
    if (task === null) throw new NotFoundError("task_not_found", `task ${id} does not exist`);
    if (task.state === "completed") return task.result as T;
    if (task.state === "failed") {
      const message = `task ${id} failed: ${task.error?.message ?? "unknown error"}`;
      throw new TaskOutcomeError("task_failed", id, message, task.error);
    }
    if (task.state === "cancelled") {
      throw new TaskOutcomeError("task_cancelled", id, `task ${id} was cancelled: ${task.error?.message ?? ""}`);
    }
    throw new TaskOutcomeError(
      "wait_timeout",
      id,
      `task ${id} is still ${task.state}: the wait ended before it finished`,
    );
  }

  #joinEventFeed(): () => void {
    if (this.#deps.feedSupervised()) return () => {};
    if (this.#privateFeed === null) {
      const feed = { controller: new AbortController(), users: 0 };
      this.#privateFeed = feed;
      this.#deps.events
        .run(feed.controller.signal)
        .catch((error: unknown) => this.#deps.logger.error({ err: error }, "event feed failed"));
    }
    const feed = this.#privateFeed;
    feed.users++;
    return () => {
      if (--feed.users > 0) return;
      feed.controller.abort();
      if (this.#privateFeed === feed) this.#privateFeed = null;
    };
  }
}
