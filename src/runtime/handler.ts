/**
 * What a task handler sees, and how a task type is declared.
 */
import type { BackoffOptions } from "../core/backoff.ts";
import type { Json } from "../core/task.ts";

/** A logger taking (message, fields), as handlers and the node's services use it (a subset of pino's). */
export type Log = {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
};

export type TaskContext = {
  id: number;
  type: string;
  queue: string;
  /** 1 on the first attempt. */
  attempt: number;
  maxAttempts: number;
  /** Fires when the task is stopped (cancel, timeout, shutdown). The reason says which. */
  signal: AbortSignal;
  /** Report progress, 0–100, with optional details. Writes are coalesced; call it as often as you like. */
  progress(percent: number, info?: Json): void;
  log: TaskLogger;
};

/** The logger a handler gets as ctx.log. */
export type TaskLogger = Log;

// biome-ignore lint/suspicious/noExplicitAny: data is whatever JSON was enqueued; a handler may type it without a cast
export type TaskHandler<TData = any, TResult = unknown> = (data: TData, ctx: TaskContext) => TResult | Promise<TResult>;

/**
 * `inline` runs the handler in the node's own thread: a stop fires the signal, and a handler that ignores
 * it is abandoned after the grace period (its late result is discarded). `thread` runs it in a worker
 * thread that is terminated after the grace period, so even a busy loop is really stopped.
 */
export type Isolation = "inline" | "thread";

export type TaskTypeOptions = {
  queue?: string;
  priority?: number;
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  timeoutMs?: number | null;
  backoff?: Partial<BackoffOptions>;
  isolation?: Isolation;
  /** How long a stopped handler may take to return before it is terminated or abandoned. */
  graceMs?: number;
  /**
   * Keep exactly one task of this type alive cluster-wide (key `singleton:<type>`): the leader adds it when
   * none is active, and when its node dies it is rescued and runs on a surviving node.
   */
  singleton?: boolean;
};

/**
 * A handler for `isolation: "thread"` must live in a module the worker thread can import: give its URL
 * (`new URL("./resize.ts", import.meta.url)`) and, when it is not the default export, the export's name.
 */
export type ThreadHandlerRef = { module: URL | string; export?: string };
