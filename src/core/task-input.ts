/**
 * Checks a TaskInput at the library's edge and fills in its defaults. Everything that reaches the store
 * has passed through here, whether it came from code, the CLI or HTTP.
 */
import { ValidationError } from "./errors.ts";
import type { Json, TaskInput } from "./task.ts";

/** Names of types and queues: letters, digits and `_ . : -`, up to 128 characters. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const MAX_KEY_LENGTH = 255;
export const MAX_PRIORITY = 1_000_000;
export const MAX_ATTEMPTS = 1000;
/** One year: longer delays or timeouts are almost certainly unit mistakes. */
export const MAX_DURATION_MS = 365 * 24 * 3600 * 1000;

export type TaskDefaults = {
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
};

export type NormalizedTaskInput = {
  queue: string;
  type: string;
  data: Json;
  priority: number;
  maxAttempts: number;
  runAt: Date;
  key: string | null;
  timeoutMs: number | null;
  backoffMs: number | null;
};

type Problem = { field: string; message: string };

export function normalizeTaskInput(
  input: TaskInput,
  defaults: (type: string) => TaskDefaults,
  now: Date,
): NormalizedTaskInput {
  const problems: Problem[] = [];
  const check = (ok: boolean, field: string, message: string) => {
    if (!ok) problems.push({ field, message });
  };
  check(typeof input.type === "string" && NAME_PATTERN.test(input.type), "type", `must match ${NAME_PATTERN.source}`);
  const base = problems.length === 0 ? defaults(input.type) : defaults("");
  const queue = input.queue ?? base.queue;
  check(typeof queue === "string" && NAME_PATTERN.test(queue), "queue", `must match ${NAME_PATTERN.source}`);
  const priority = input.priority ?? base.priority;
  check(
    Number.isInteger(priority) && Math.abs(priority) <= MAX_PRIORITY,
    "priority",
    `must be an integer within ±${MAX_PRIORITY}`,
  );
  const maxAttempts = input.maxAttempts ?? base.maxAttempts;
  check(
    Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= MAX_ATTEMPTS,
    "maxAttempts",
    `must be an integer from 1 to ${MAX_ATTEMPTS}`,
  );
  const timeoutMs = input.timeoutMs === undefined ? base.timeoutMs : input.timeoutMs;
  check(
    timeoutMs === null || isDuration(timeoutMs, 1),
    "timeoutMs",
    "must be null or an integer number of ms from 1 to one year",
  );
  const backoffMs = input.backoffMs ?? null;
  check(
    backoffMs === null || isDuration(backoffMs, 0),
    "backoffMs",
    "must be null or an integer number of ms up to one year",
  );
  const key = input.key ?? null;
  check(
    key === null || (typeof key === "string" && key.length >= 1 && key.length <= MAX_KEY_LENGTH),
    "key",
    `must be null or a string of 1 to ${MAX_KEY_LENGTH} characters`,
  );
  const runAt = resolveRunAt(input, now, problems);
  const data = input.data === undefined ? null : input.data;
  check(
    isJson(data),
    "data",
    "must be JSON (objects, arrays, strings without NUL characters or lone surrogates, finite numbers, booleans and null) nested at most 64 levels deep",
  );
  if (problems.length > 0) {
    throw new ValidationError(problems.map((p) => `${p.field} ${p.message}`).join("; "), problems);
  }
  return { queue, type: input.type, data, priority, maxAttempts, runAt, key, timeoutMs, backoffMs };
}

function resolveRunAt(input: TaskInput, now: Date, problems: Problem[]): Date {
  if (input.runAt !== undefined && input.delay !== undefined) {
    problems.push({ field: "runAt", message: "and delay cannot both be given" });
    return now;
  }
  if (input.delay !== undefined) {
    if (!isDuration(input.delay, 0))
      problems.push({ field: "delay", message: "must be an integer number of ms up to one year" });
    return new Date(now.getTime() + input.delay);
  }
  if (input.runAt !== undefined) {
    if (!(input.runAt instanceof Date) || Number.isNaN(input.runAt.getTime())) {
      problems.push({ field: "runAt", message: "must be a valid date" });
      return now;
    }
    return input.runAt;
  }
  return now;
}

function isDuration(value: unknown, min: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= MAX_DURATION_MS;
}

/**
 * Whether `value` survives JSON.stringify/parse unchanged (no undefined, functions, NaN, Dates, cycles) and
 * can be stored by every store: no NUL character and no lone UTF-16 surrogate in a string or key, which
 * PostgreSQL's jsonb refuses.
 */
export function isJson(value: unknown, depth = 0): value is Json {
  if (depth > 64) return false;
  if (typeof value === "string") return storableText(value);
  if (value === null || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((item) => isJson(item, depth + 1));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.entries(value).every(([key, item]) => storableText(key) && isJson(item, depth + 1));
  }
  return false;
}

/** Text every store keeps as it was given: no NUL character, no lone UTF-16 surrogate. */
export function storableText(text: string): boolean {
  return !text.includes("\u0000") && text.isWellFormed();
}
