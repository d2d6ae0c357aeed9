/**
 * From PostgreSQL rows to the store's shapes. pg already gives Dates for timestamptz, parsed values for jsonb
 * and string arrays for text[]; bigint (int8) columns arrive as numbers through the driver's own type parser
 * (see INT8_AS_NUMBER), so the mapping here is mostly renaming.
 */
import pg from "pg";
import type { ErrorRecord } from "../../core/errors.ts";
import type { TaskState } from "../../core/states.ts";
import type { Json, Task, TaskProgress } from "../../core/task.ts";
import type { Lease, NodeRecord, Schedule, ScheduleTaskOptions } from "../store.ts";

export type Row = Record<string, unknown>;

const INT8_OID = 20;

/**
 * Type parsers for this driver's pool only (never pg.types, which is global to the process): int8 becomes a
 * number. Every int8 this driver reads is an id, an offset, a duration in ms or a count, all far below 2^53;
 * a value beyond that is refused rather than rounded.
 */
export function int8AsNumber(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, "text", (text: string) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new RangeError(`int8 value ${text} is not a safe integer`);
    return value;
  });
  return types;
}

/** A row of taskClaim's RETURNING list as the running task it now is: the claim set the other columns itself. */
export function claimedToTask(row: Row, node: string, startedAt: Date): Task {
  return rowToTask({
    ...row,
    state: "running",
    node,
    run_at: new Date(Number(row.run_at_ms)),
    created_at: new Date(Number(row.created_at_ms)),
    started_at: new Date(startedAt.getTime()),
    progress: null,
    result: null,
    finished_at: null,
  });
}

function dateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : (value as Date);
}

function stringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function rowToTask(row: Row): Task {
  return {
    id: Number(row.id),
    queue: String(row.queue),
    type: String(row.type),
    data: (row.data ?? null) as Json,
    priority: Number(row.priority),
    state: String(row.state) as TaskState,
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    stalls: Number(row.stalls),
    runAt: row.run_at as Date,
    key: stringOrNull(row.key),
    progress: (row.progress ?? null) as TaskProgress | null,
    result: (row.result ?? null) as Json,
    error: (row.error ?? null) as ErrorRecord | null,
    errors: (row.errors ?? []) as ErrorRecord[],
    timeoutMs: numberOrNull(row.timeout_ms),
    backoffMs: numberOrNull(row.backoff_ms),
    node: stringOrNull(row.node),
    createdAt: row.created_at as Date,
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
  };
}

export function rowToSchedule(row: Row): Schedule {
  return {
    name: String(row.name),
    cron: String(row.cron),
    timezone: stringOrNull(row.timezone),
    type: String(row.type),
    data: (row.data ?? null) as Json,
    options: (row.options ?? {}) as ScheduleTaskOptions,
    enabled: row.enabled === true,
    lastTick: dateOrNull(row.last_tick),
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}

export function rowToNode(row: Row): NodeRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    host: String(row.host),
    pid: Number(row.pid),
    version: String(row.version),
    roles: (row.roles ?? []) as string[],
    startedAt: row.started_at as Date,
    heartbeatAt: row.heartbeat_at as Date,
    info: (row.info ?? null) as Json,
  };
}

export function rowToLease(row: Row): Lease {
  return { name: String(row.name), node: String(row.node), expiresAt: row.expires_at as Date };
}

/** JSON text for a jsonb parameter (pg would send a JS array as a PostgreSQL array, not as JSON). */
export function jsonParam(value: Json | undefined): string {
  return JSON.stringify(value ?? null);
}
