/**
 * Records how an attempt ended, one path for every ending: a return completes it (written in batches by the
 * completion buffer), a throw, a timeout or a result that is not JSON fails it (retried after a backoff while
 * attempts are left, failed for good otherwise), and a stop by cancel, shutdown or fence records nothing (the store
 * says so already). The task's last progress is written first, so the stored progress is its latest. Each
 * ending is announced on the node's events and, once written, to the other nodes through the notifier.
 */
import { backoffDelay } from "../core/backoff.ts";
import { isUnrecoverable, toErrorRecord } from "../core/errors.ts";
import { isJson } from "../core/task-input.ts";
import type { Json, Task } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { CompletionBuffer } from "./completion-buffer.ts";
import type { Definitions } from "./definitions.ts";
import type { Execution, ExecutionOutcome } from "./execution.ts";
import type { Log } from "./handler.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";
import { persist } from "./persist.ts";
import type { ProgressWriter } from "./progress-writer.ts";

export type OutcomeRecorderDeps = {
  store: Store;
  definitions: Definitions;
  completions: CompletionBuffer;
  progress: ProgressWriter;
  notifier: Notifier;
  events: NodeEvents;
  logger: Log;
};

export class OutcomeRecorder {
  readonly #deps: OutcomeRecorderDeps;

  constructor(deps: OutcomeRecorderDeps) {
    this.#deps = deps;
  }

  async record(execution: Execution, outcome: ExecutionOutcome): Promise<void> {
    const { task, stopReason } = execution;
    const { progress, events } = this.#deps;
    if (stopReason !== null) progress.forget(task.id);
    else await progress.flush(task.id);
    if (stopReason !== null) events.emit("task:stopped", { task, reason: stopReason, how: howItEnded(outcome) });
    // Cancelled or handed back by the shutdown: the store already says so; what the handler did is discarded.
    // Fenced: the leader hands the task to another node (or this one hands it back when the store returns), and
    // this attempt's result must not race that one's.
    if (stopReason === "cancelled" || stopReason === "shutdown" || stopReason === "fenced") return;
    if (stopReason === "timeout") {
      const how = outcome.kind === "ended" ? `; handler ${outcome.how}` : "";
      return this.#fail(task, timeoutError(task, how));
    }
    if (outcome.kind === "threw") return this.#fail(task, outcome.error);
    if (outcome.kind === "ended") return; // only a stop ends an attempt this way, and stops are handled above
    const result = toJsonResult(outcome.value);
    if (result === undefined) {
      return this.#fail(task, new TypeError(`the handler of ${task.type} returned a value that is not JSON`));
    }
    if (await this.#deps.completions.complete(task.id, task.queue, task.attempt, result)) {
      events.emit("task:completed", { task, result });
    }
  }

  async #fail(task: Task, error: unknown): Promise<void> {
    const { store, notifier, definitions, events, logger } = this.#deps;
    const now = new Date();
    const definition = definitions.get(task.type);
    const final = isUnrecoverable(error) || task.attempt >= task.maxAttempts || definition === undefined;
    const retryAt = final
      ? null
      : new Date(
          now.getTime() +
            backoffDelay(task.attempt, { ...definition.backoff, baseMs: task.backoffMs ?? definition.backoff.baseMs }),
        );
    const record = toErrorRecord(error, task.attempt, now);
    const updated = await persist(
      "failing a task",
      () => store.taskFail({ id: task.id, attempt: task.attempt, error: record, retryAt, now }),
      logger,
    );
    if (updated === null) return; // stale: cancelled or rescued meanwhile
    if (retryAt === null) {
      notifier.eventsWritten();
      events.emit("task:failed", { task, error: record });
    } else {
      notifier.retryScheduled(retryAt);
      events.emit("task:retried", { task, error: record, runAt: retryAt });
    }
  }
}

function howItEnded(outcome: ExecutionOutcome): "returned" | "threw" | "terminated" | "abandoned" {
  return outcome.kind === "ended" ? outcome.how : outcome.kind;
}

function timeoutError(task: Task, how: string): Error {
  const error = new Error(`attempt ${task.attempt} timed out after ${task.timeoutMs} ms${how}`);
  error.name = "TimeoutError";
  return error;
}

/** The handler's return value as JSON (undefined → null, toJSON honoured), or undefined if it has no JSON form. */
function toJsonResult(value: unknown): Json | undefined {
  if (value === undefined) return null;
  if (isJson(value)) return value;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : (JSON.parse(text) as Json);
  } catch {
    return undefined;
  }
}
