/**
 * From SQLite rows to the store's shapes, and back for the JSON columns a statement writes. Times are integer
 * milliseconds since the epoch and JSON columns hold text, so each value is converted here. taskClaim's rows come
 * back as arrays (see claimedToTask): the hot path's mapping, by position.
 */
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import type { ErrorRecord } from "../../core/errors.ts";
import type { TaskState } from "../../core/states.ts";
import { type Json, MAX_ERROR_HISTORY, type Task, type TaskProgress } from "../../core/task.ts";
import type { Lease, NodeRecord, Schedule, ScheduleTaskOptions } from "../store.ts";

export type Row = Record<string, SQLInputValue>;

function parseJson<T>(value: SQLInputValue | undefined, fallback: T): T {
  return value === null || value === undefined ? fallback : (JSON.parse(String(value)) as T);
}

function dateOrNull(value: SQLInputValue | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(Number(value));
}

function numberOrNull(value: SQLInputValue | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function rowToTask(row: Row): Task {
  return {
    id: Number(row.id),
    queue: String(row.queue),
    type: String(row.type),
    data: parseJson<Json>(row.data, null),
    priority: Number(row.priority),
    state: String(row.state) as TaskState,
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    stalls: Number(row.stalls),
    runAt: new Date(Number(row.run_at)),
    key: row.key === null || row.key === undefined ? null : String(row.key),
    progress: parseJson<TaskProgress | null>(row.progress, null),
    result: parseJson<Json>(row.result, null),
    error: parseJson<ErrorRecord | null>(row.error, null),
    errors: parseJson<ErrorRecord[]>(row.errors, []),
    timeoutMs: numberOrNull(row.timeout_ms),
    backoffMs: numberOrNull(row.backoff_ms),
    node: row.node === null || row.node === undefined ? null : String(row.node),
    createdAt: new Date(Number(row.created_at)),
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
  };
}

/** A row of taskClaim's RETURNING list (in its order) as the running task it now is. */
export function claimedToTask(row: SQLOutputValue[], node: string, startedAt: number): Task {
  const [
    id,
    queue,
    type,
    data,
    priority,
    attempt,
    maxAttempts,
    stalls,
    runAt,
    key,
    error,
    errors,
    timeoutMs,
    backoffMs,
    createdAt,
  ] = row;
  return {
    id: Number(id),
    queue: String(queue),
    type: String(type),
    data: data === "null" ? null : parseJson<Json>(data, null),
    priority: Number(priority),
    state: "running",
    attempt: Number(attempt),
    maxAttempts: Number(maxAttempts),
    stalls: Number(stalls),
    runAt: new Date(Number(runAt)),
    key: key === null ? null : String(key),
    progress: null,
    result: null,
    error: parseJson<ErrorRecord | null>(error, null),
    errors: errors === "[]" ? [] : parseJson<ErrorRecord[]>(errors, []),
    timeoutMs: numberOrNull(timeoutMs),
    backoffMs: numberOrNull(backoffMs),
    node,
    createdAt: new Date(Number(createdAt)),
    startedAt: new Date(startedAt),
    finishedAt: null,
  };
}

export function rowToSchedule(row: Row): Schedule {
  return {
    name: String(row.name),
    cron: String(row.cron),
    timezone: row.timezone === null || row.timezone === undefined ? null : String(row.timezone),
    type: String(row.type),
    data: parseJson<Json>(row.data, null),
    options: parseJson<ScheduleTaskOptions>(row.options, {}),
    enabled: Number(row.enabled) === 1,
    lastTick: dateOrNull(row.last_tick),
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}

export function rowToNode(row: Row): NodeRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    host: String(row.host),
    pid: Number(row.pid),
    version: String(row.version),
    roles: JSON.parse(String(row.roles)) as string[],
    startedAt: new Date(Number(row.started_at)),
    heartbeatAt: new Date(Number(row.heartbeat_at)),
    info: JSON.parse(String(row.info)) as Json,
  };
}

export function rowToLease(row: Row): Lease {
  return { name: String(row.name), node: String(row.node), expiresAt: new Date(Number(row.expires_at)) };
}

/** The error history with `error` appended, keeping the newest MAX_ERROR_HISTORY entries (as JSON text). */
export function appendError(history: SQLInputValue | undefined, error: ErrorRecord): string {
  const errors = parseJson<ErrorRecord[]>(history, []);
  errors.push(error);
  return JSON.stringify(errors.slice(-MAX_ERROR_HISTORY));
}
