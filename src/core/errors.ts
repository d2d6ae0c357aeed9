/**
 * Conveyor's errors: a small set of classes, each carrying a stable machine-readable `code` and the HTTP
 * status it maps to. Every code is listed in ERROR_CODES and documented in docs/errors.md
 * (errors.test.ts checks that the two agree), so a client can rely on them.
 */

export const ERROR_CODES = {
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  fault_injection_disabled: 403,
  not_found: 404,
  service_not_found: 404,
  task_not_found: 404,
  queue_not_found: 404,
  topic_not_found: 404,
  publisher_not_found: 404,
  message_not_found: 404,
  delivery_not_found: 404,
  duplicate_key: 409,
  invalid_state: 409,
  duplicate_topic: 409,
  duplicate_publisher: 409,
  idempotency_conflict: 409,
  task_failed: 409,
  task_cancelled: 409,
  wait_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  headers_too_large: 431,
  internal_error: 500,
  store_unavailable: 503,
  config_invalid: 500,
  handler_not_defined: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: every error Conveyor raises on purpose is one of these. */
export class ConveyorError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = ERROR_CODES[code];
    this.details = options.details;
  }
}

/** Input that breaks a rule (HTTP 400). `details` lists the offending fields where known. */
export class ValidationError extends ConveyorError {
  constructor(message: string, details?: unknown, code: "validation_failed" | "invalid_json" = "validation_failed") {
    super(code, message, { details });
  }
}

/** An id that names nothing (HTTP 404). */
export class NotFoundError extends ConveyorError {
  constructor(
    code:
      | "not_found"
      | "task_not_found"
      | "queue_not_found"
      | "topic_not_found"
      | "publisher_not_found"
      | "message_not_found"
      | "delivery_not_found",
    message: string,
  ) {
    super(code, message);
  }
}

/** A request that conflicts with the current state (HTTP 409). */
export class ConflictError extends ConveyorError {
  constructor(
    code: "duplicate_key" | "invalid_state" | "duplicate_topic" | "duplicate_publisher" | "idempotency_conflict",
    message: string,
    details?: unknown,
  ) {
    super(code, message, { details });
  }
}

/** `conveyor.result(id)` on a task that ended without a result (failed or cancelled), or waited too long. */
export class TaskOutcomeError extends ConveyorError {
  readonly taskId: number;
  constructor(
    code: "task_failed" | "task_cancelled" | "wait_timeout",
    taskId: number,
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
    this.taskId = taskId;
  }
}

/** A bad configuration: the node refuses to start rather than guess. */
export class ConfigError extends ConveyorError {
  constructor(message: string) {
    super("config_invalid", message);
  }
}

/**
 * Thrown by a handler to mark its failure as final: no retry, whatever attempts are left
 * (BullMQ's UnrecoverableError, Oban's {:cancel, reason}).
 */
export class UnrecoverableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UnrecoverableError";
  }
}

/**
 * Whether a thrown value asks for no retry. Checked by name too, because errors from worker threads lose their class.
 */
export function isUnrecoverable(error: unknown): boolean {
  return error instanceof UnrecoverableError || (error instanceof Error && error.name === "UnrecoverableError");
}

/** A plain, JSON-safe record of an error, as stored in a task's error history. */
export type ErrorRecord = { name: string; message: string; stack?: string; attempt: number; at: string };

export function toErrorRecord(error: unknown, attempt: number, at: Date): ErrorRecord {
  if (error instanceof Error) {
    const record: ErrorRecord = { name: error.name, message: error.message, attempt, at: at.toISOString() };
    if (error.stack !== undefined) record.stack = error.stack.split("\n").slice(0, 12).join("\n");
    return record;
  }
  return { name: "Error", message: String(error), attempt, at: at.toISOString() };
}
