/**
 * The script each worker thread of thread-runner.ts runs: import the handler module, build its TaskContext,
 * call it once, post the result or the error, then let the thread end. Everything the handler does with
 * ctx (progress, log) is forwarded to the parent as messages, in order, on the one port.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Json } from "../core/task.ts";
import { ConveyorError } from "../core/errors.ts";
import type { TaskContext, TaskHandler, Log } from "./handler.ts";
import type { FromWorker, LogLevel, ThreadError, ToWorker, WorkerInput } from "./thread-runner.ts";

if (parentPort === null) throw new Error("thread-worker.ts is meant to run in a worker thread (see thread-runner.ts)");
const port = parentPort;
const input = workerData as WorkerInput;

// abort() in the parent arrives as a message; this listener also keeps the thread alive while the handler
// awaits something that holds no handle of its own (e.g. a promise that only the signal settles).
const controller = new AbortController();
const onMessage = (msg: ToWorker) => {
  if (msg.kind === "abort") controller.abort(msg.reason);
};
port.on("message", onMessage);

const send = (msg: FromWorker) => port.postMessage(msg);

function toThreadError(error: unknown): ThreadError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const out: ThreadError = { name: error.name, message: error.message };
  if (error.stack !== undefined) out.stack = error.stack;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") out.code = code;
  return out;
}

async function loadHandler(): Promise<TaskHandler> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(input.module)) as Record<string, unknown>;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ConveyorError("handler_not_defined", `cannot import handler module ${input.module}: ${why}`, {
      cause: error,
    });
  }
  const fn = mod[input.export];
  if (typeof fn !== "function") {
    throw new ConveyorError(
      "handler_not_defined",
      `handler module ${input.module} has no function export "${input.export}" (found ${typeof fn})`,
    );
  }
  return fn as TaskHandler;
}

function log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
  if (fields === undefined) {
    send({ kind: "log", level, msg });
    return;
  }
  try {
    send({ kind: "log", level, msg, fields });
  } catch (error) {
    // A log call must never fail the task: fields holding functions, sockets etc. cannot cross threads.
    send({ kind: "log", level, msg, fields: { fieldsDropped: `not structured-cloneable: ${String(error)}` } });
  }
}

const logger: Log = {
  debug: (msg, fields) => log("debug", msg, fields),
  info: (msg, fields) => log("info", msg, fields),
  warn: (msg, fields) => log("warn", msg, fields),
  error: (msg, fields) => log("error", msg, fields),
};

const ctx: TaskContext = {
  ...input.context,
  signal: controller.signal,
  progress(percent: number, info?: Json) {
    // A bad `info` throws here, in the handler, where the mistake is.
    send(info === undefined ? { kind: "progress", percent } : { kind: "progress", percent, info });
  },
  log: logger,
};

try {
  const handler = await loadHandler();
  const value: unknown = await handler(input.data, ctx);
  try {
    send({ kind: "result", value });
  } catch (error) {
    // postMessage throws DataCloneError synchronously for functions, class instances with private state, etc.
    throw new TypeError(
      `handler for ${input.context.type} returned a value that cannot be structured-cloned: ${String(error)}`,
    );
  }
} catch (error) {
  send({ kind: "error", error: toThreadError(error) });
} finally {
  // Stop holding the thread open; the parent terminates it anyway once it has the answer.
  port.off("message", onMessage);
}
