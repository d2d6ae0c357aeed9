/**
 * Runs one task handler in its own worker thread (`isolation: "thread"`), so that a stop can really end it:
 * a handler that ignores its AbortSignal (a busy loop, a stuck native call) cannot be interrupted from the
 * outside in the node's own thread, but a worker thread can be terminated (DESIGN.md §3 "Cancel / stop").
 *
 * One fresh Worker per run: nothing leaks from one task into the next, and terminate() never hits a
 * neighbour. The worker side is thread-worker.ts; the two talk with the messages typed below.
 */
import { Worker } from "node:worker_threads";
import type { Json } from "../core/task.ts";
import { ConveyorError } from "../core/errors.ts";
import type { ThreadHandlerRef } from "./handler.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

export type ThreadRunParams = {
  handler: ThreadHandlerRef;
  data: Json;
  context: { id: number; type: string; queue: string; attempt: number; maxAttempts: number };
  /** Called in order with the handler's ctx.progress / ctx.log calls. Must not throw. */
  onProgress: (percent: number, info?: Json) => void;
  onLog: (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;
};

export type ThreadRun = {
  /**
   * The handler's return value (a structured clone of it), or a rejection with an Error whose name, message,
   * stack (and string `code`, if any) mirror the thrown one. Settles only once the thread has exited, so a
   * settled run holds no thread. Rejects too if the thread dies without an answer (process.exit, crash).
   */
  result: Promise<unknown>;
  /** Fires ctx.signal inside the thread with this reason. Harmless after settle. */
  abort(reason: string): void;
  /**
   * Hard stop: terminates the thread; `result` then rejects with a ThreadTerminatedError. Resolves once the thread is
   * gone.
   */
  terminate(): Promise<void>;
  /** The worker's threadId (stays set after exit, unlike Worker#threadId which turns -1). */
  threadId: number;
};

/** What the worker receives as workerData: all of it must be structured-cloneable, hence `module` as an href. */
export type WorkerInput = {
  module: string;
  export: string;
  data: Json;
  context: ThreadRunParams["context"];
};

/** An error as it crosses the thread boundary: class identity is lost in structured clone, so we send the parts. */
export type ThreadError = { name: string; message: string; stack?: string; code?: string };

export type ToWorker = { kind: "abort"; reason: string };
export type FromWorker =
  | { kind: "progress"; percent: number; info?: Json }
  | { kind: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { kind: "result"; value: unknown }
  | { kind: "error"; error: ThreadError };

// Beside this module: thread-worker.ts in a checkout, thread-worker.js in the package built from it (dist/).
const WORKER_SCRIPT = new URL(`./thread-worker.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`, import.meta.url);

/** Rebuilds the thrown error in this thread. Ours (handler_not_defined) comes back as the real class. */
function reviveError(e: ThreadError): Error {
  const error =
    e.code === "handler_not_defined" ? new ConveyorError("handler_not_defined", e.message) : new Error(e.message);
  error.name = e.name;
  if (e.stack !== undefined) error.stack = e.stack;
  if (e.code !== undefined) Object.assign(error, { code: e.code });
  return error;
}

function threadTerminated(context: ThreadRunParams["context"]): Error {
  const error = new Error(`task ${context.id} (${context.type}): worker thread terminated`);
  error.name = "ThreadTerminatedError";
  return error;
}

export function runInThread(params: ThreadRunParams): ThreadRun {
  const { handler, context } = params;
  const input: WorkerInput = {
    module: handler.module instanceof URL ? handler.module.href : String(handler.module),
    export: handler.export ?? "default",
    data: params.data,
    context,
  };
  const worker = new Worker(WORKER_SCRIPT, { workerData: input, name: `conveyor ${context.type}#${context.id}` });
  const threadId = worker.threadId;

  // The first answer wins: a result/error message from the handler, else the cause of the thread's death.
  let outcome: { ok: true; value: unknown } | { ok: false; error: Error } | undefined;
  let terminating = false;
  let exited = false;

  let settle!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  const result = new Promise<unknown>((resolve, reject) => (settle = { resolve, reject }));
  // A caller that only calls terminate() (and never awaits `result`) must not crash the process with an
  // unhandled rejection; callers that do await `result` still see it reject.
  result.catch(() => {});

  let markGone!: () => void;
  const gone = new Promise<void>((resolve) => (markGone = resolve));

  worker.on("message", (msg: FromWorker) => {
    if (outcome !== undefined) return; // stray calls from timers the handler left behind: dropped
    switch (msg.kind) {
      case "progress":
        return msg.info === undefined ? params.onProgress(msg.percent) : params.onProgress(msg.percent, msg.info);
      case "log":
        return msg.fields === undefined
          ? params.onLog(msg.level, msg.msg)
          : params.onLog(msg.level, msg.msg, msg.fields);
      case "result":
        outcome = { ok: true, value: msg.value };
        break;
      case "error":
        outcome = { ok: false, error: reviveError(msg.error) };
        break;
    }
    // The handler has answered. The worker lets itself end, but timers or sockets the handler left open
    // would keep it alive: terminate now rather than trust that. `result` settles on 'exit'.
    worker.terminate().catch(() => {});
  });
  worker.on("messageerror", (error) => {
    outcome ??= {
      ok: false,
      error: new Error(`task ${context.id}: a message from the worker could not be read: ${error.message}`),
    };
    worker.terminate().catch(() => {});
  });
  // An uncaught exception in the thread (e.g. from a callback the handler scheduled). 'exit' follows.
  worker.on("error", (error) => {
    outcome ??= { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
  });
  worker.on("exit", (code) => {
    exited = true;
    if (outcome === undefined) {
      outcome = terminating
        ? { ok: false, error: threadTerminated(context) }
        : {
            ok: false,
            error: new Error(
              `task ${context.id} (${context.type}): worker thread exited with code ${code} before the handler returned`,
            ),
          };
    }
    if (outcome.ok) settle.resolve(outcome.value);
    else settle.reject(outcome.error);
    markGone();
  });

  return {
    result,
    threadId,
    abort(reason) {
      if (exited || outcome !== undefined) return;
      const msg: ToWorker = { kind: "abort", reason };
      worker.postMessage(msg);
    },
    terminate() {
      if (!exited) {
        terminating = true;
        worker.terminate().catch(() => {});
      }
      return gone;
    },
  };
}
