/**
 * One run of one task attempt, inline or in a worker thread, and how it is stopped.
 *
 * A stop (cancel, timeout, shutdown) fires the handler's AbortSignal at once. A handler that has not
 * settled `graceMs` later is ended the only way its isolation allows: a worker thread is terminated; an
 * inline handler is abandoned (it may keep running, but its result is discarded and its slot is freed).
 */
import type { Json, Task, TaskProgress } from "../core/task.ts";
import type { Definition } from "./definitions.ts";
import type { TaskContext, TaskLogger } from "./handler.ts";
import { runInThread, type ThreadRun } from "./thread-runner.ts";

export type StopReason = "cancelled" | "timeout" | "shutdown";

export type ExecutionOutcome =
  | { kind: "returned"; value: unknown }
  | { kind: "threw"; error: unknown }
  /** The grace period ran out after a stop: the thread was terminated or the inline handler abandoned. */
  | { kind: "ended"; how: "terminated" | "abandoned" };

export type ExecutionHooks = {
  onProgress(task: Task, progress: TaskProgress): void;
  logger: TaskLogger;
};

export class Execution {
  readonly task: Task;
  readonly definition: Definition;
  readonly outcome: Promise<ExecutionOutcome>;
  #stopReason: StopReason | null = null;
  readonly #controller = new AbortController();
  #thread: ThreadRun | null = null;
  #endByGrace: ((outcome: ExecutionOutcome) => void) | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  #settled = false;
  #terminating = false;

  constructor(task: Task, definition: Definition, hooks: ExecutionHooks) {
    this.task = task;
    this.definition = definition;
    const ended = new Promise<ExecutionOutcome>((resolve) => (this.#endByGrace = resolve));
    const ran = this.#start(hooks).then(
      (value): ExecutionOutcome => ({ kind: "returned", value }),
      (error: unknown): ExecutionOutcome =>
        this.#terminating && error instanceof Error && error.name === "ThreadTerminatedError"
          ? { kind: "ended", how: "terminated" }
          : { kind: "threw", error },
    );
    this.outcome = Promise.race([ran, ended]).then((outcome) => {
      this.#settled = true;
      if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
      return outcome;
    });
  }

  get stopReason(): StopReason | null {
    return this.#stopReason;
  }

  /** Ask the handler to stop; after the grace period, end it. Only the first reason counts. */
  stop(reason: StopReason): void {
    if (this.#stopReason !== null || this.#settled) return;
    this.#stopReason = reason;
    this.#controller.abort(reason);
    this.#thread?.abort(reason);
    this.#graceTimer = setTimeout(() => void this.#end(), this.definition.graceMs);
  }

  async #end(): Promise<void> {
    if (this.#thread !== null) {
      this.#terminating = true;
      await this.#thread.terminate();
      this.#endByGrace?.({ kind: "ended", how: "terminated" });
    } else {
      this.#endByGrace?.({ kind: "ended", how: "abandoned" });
    }
  }

  #start(hooks: ExecutionHooks): Promise<unknown> {
    const { task, definition } = this;
    const progress = (percent: number, info?: Json) => {
      if (typeof percent !== "number" || !Number.isFinite(percent)) throw new TypeError("progress must be a finite number");
      const value: TaskProgress = { percent: Math.min(100, Math.max(0, percent)) };
      if (info !== undefined) value.info = info;
      hooks.onProgress(task, value);
    };
    if (definition.threadRef !== null) {
      this.#thread = runInThread({
        handler: definition.threadRef,
        data: task.data,
        context: { id: task.id, type: task.type, queue: task.queue, attempt: task.attempt, maxAttempts: task.maxAttempts },
        onProgress: (percent, info) => progress(percent, info),
        onLog: (level, msg, fields) => hooks.logger[level](msg, fields),
      });
      return this.#thread.result;
    }
    const context: TaskContext = {
      id: task.id,
      type: task.type,
      queue: task.queue,
      attempt: task.attempt,
      maxAttempts: task.maxAttempts,
      signal: this.#controller.signal,
      progress,
      log: hooks.logger,
    };
    const handler = definition.handler;
    if (handler === null) return Promise.reject(new Error(`no handler for ${task.type}`));
    // Called in a microtask so that a handler throwing synchronously is a rejection like any other.
    return Promise.resolve().then(() => handler(task.data, context));
  }
}
