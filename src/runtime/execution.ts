/**
 * One run of one task attempt, inline or in a worker thread, and how it is stopped.
 *
 * A stop (cancel, timeout, shutdown, fence) fires the handler's AbortSignal at once. A handler that has not
 * settled `graceMs` later is ended the only way its isolation allows: a worker thread is terminated; an
 * inline handler is abandoned (it may keep running, but its result is discarded and its slot is freed).
 */
import type { Json, Task, TaskProgress } from "../core/task.ts";
import type { Definition } from "./definitions.ts";
import type { TaskContext, Log } from "./handler.ts";
import { runInThread, type ThreadRun } from "./thread-runner.ts";

/** Why an attempt was stopped. "fenced": this node lost the store and the leader will hand the task on (fence.ts). */
export type StopReason = "cancelled" | "timeout" | "shutdown" | "fenced";

export type ExecutionOutcome =
  | { kind: "returned"; value: unknown }
  | { kind: "threw"; error: unknown }
  /** The grace period ran out after a stop: the thread was terminated or the inline handler abandoned. */
  | { kind: "ended"; how: "terminated" | "abandoned" };

export type ExecutionHooks = {
  onProgress(task: Task, progress: TaskProgress): void;
  /** Builds the handler's logger; called only if the handler uses one (most never log). */
  logger: () => Log;
};

export class Execution {
  readonly task: Task;
  readonly definition: Definition;
  readonly outcome: Promise<ExecutionOutcome>;
  #stopReason: StopReason | null = null;
  /** Made when the handler first reads ctx.signal or the task is stopped, whichever comes first. */
  #controller: AbortController | null = null;
  #thread: ThreadRun | null = null;
  #settle!: (outcome: ExecutionOutcome) => void;
  #graceTimer: NodeJS.Timeout | null = null;
  #settled = false;
  #terminating = false;

  constructor(task: Task, definition: Definition, hooks: ExecutionHooks) {
    this.task = task;
    this.definition = definition;
    // The first of the handler settling and the grace period running out decides the outcome.
    this.outcome = new Promise<ExecutionOutcome>((resolve) => {
      this.#settle = (outcome) => {
        if (this.#settled) return;
        this.#settled = true;
        if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
        resolve(outcome);
      };
    });
    this.#start(hooks).then(
      (value) => this.#settle({ kind: "returned", value }),
      (error: unknown) =>
        this.#settle(
          this.#terminating && error instanceof Error && error.name === "ThreadTerminatedError"
            ? { kind: "ended", how: "terminated" }
            : { kind: "threw", error },
        ),
    );
  }

  get stopReason(): StopReason | null {
    return this.#stopReason;
  }

  /**
   * Ask the handler to stop; after the grace period (the type's, unless `graceMs` cuts it), end it. Only the first
   * reason counts.
   */
  stop(reason: StopReason, graceMs = this.definition.graceMs): void {
    if (this.#stopReason !== null || this.#settled) return;
    this.#stopReason = reason;
    this.#signal();
    this.#controller!.abort(reason);
    this.#thread?.abort(reason);
    this.#graceTimer = setTimeout(() => void this.#end(), Math.min(graceMs, this.definition.graceMs));
  }

  #signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  async #end(): Promise<void> {
    if (this.#thread !== null) {
      this.#terminating = true;
      await this.#thread.terminate();
      this.#settle({ kind: "ended", how: "terminated" });
    } else {
      this.#settle({ kind: "ended", how: "abandoned" });
    }
  }

  #start(hooks: ExecutionHooks): Promise<unknown> {
    const { task, definition } = this;
    const progress = (percent: number, info?: Json) => {
      if (typeof percent !== "number" || !Number.isFinite(percent))
        throw new TypeError("progress must be a finite number");
      const value: TaskProgress = { percent: Math.min(100, Math.max(0, percent)) };
      if (info !== undefined) value.info = info;
      hooks.onProgress(task, value);
    };
    if (definition.threadRef !== null) {
      const logger = hooks.logger();
      this.#thread = runInThread({
        handler: definition.threadRef,
        data: task.data,
        context: {
          id: task.id,
          type: task.type,
          queue: task.queue,
          attempt: task.attempt,
          maxAttempts: task.maxAttempts,
        },
        onProgress: (percent, info) => progress(percent, info),
        onLog: (level, msg, fields) => logger[level](msg, fields),
      });
      return this.#thread.result;
    }
    const execution = this;
    let logger: Log | null = null;
    // signal and log are getters: an AbortController and a child logger per task cost more than a no-op
    // handler's whole run, and most handlers never touch one or the other.
    const context: TaskContext = {
      id: task.id,
      type: task.type,
      queue: task.queue,
      attempt: task.attempt,
      maxAttempts: task.maxAttempts,
      get signal() {
        return execution.#signal();
      },
      progress,
      get log() {
        logger ??= hooks.logger();
        return logger;
      },
    };
    const handler = definition.handler;
    if (handler === null) return Promise.reject(new Error(`no handler for ${task.type}`));
    // Called in a microtask so that a handler throwing synchronously is a rejection like any other.
    return Promise.resolve().then(() => handler(task.data, context));
  }
}
