/**
 * From dispatch's rows to the DispatchStore's shapes, for both drivers: SQLite gives times as epoch milliseconds,
 * booleans as 0/1 and JSON as text; PostgreSQL gives Dates, booleans and parsed JSON. Each helper takes either.
 * A row may carry its columns under a prefix (`p_target`), as a join that reads several tables names them.
 */
import type { Json } from "../core/task.ts";
import type {
  Attempt,
  AttemptOutcome,
  Delivery,
  DeliveryState,
  Message,
  Publisher,
  PublisherType,
  RetryMode,
  SigningSecret,
  Topic,
} from "./dispatch-store.ts";

export type DispatchRow = Record<string, unknown>;

export function toDate(value: unknown): Date {
  return value instanceof Date ? new Date(value.getTime()) : new Date(Number(value));
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toBool(value: unknown): boolean {
  return value === true || value === 1 || value === 1n;
}

function toNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function toStringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

export function toJson<T = Json>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

export function rowToTopic(row: DispatchRow, p = ""): Topic {
  return {
    id: Number(row[`${p}id`]),
    name: String(row[`${p}name`]),
    originHost: String(row[`${p}origin_host`]),
    recoveryEnabled: toBool(row[`${p}recovery_enabled`]),
    createdAt: toDate(row[`${p}created_at`]),
    updatedAt: toDate(row[`${p}updated_at`]),
  };
}

/** A publisher row; its topic's name is `topic_name` (or `t_name` beside a prefixed row). */
export function rowToPublisher(row: DispatchRow, p = "", topicName = String(row.topic_name)): Publisher {
  return {
    id: Number(row[`${p}id`]),
    topicId: Number(row[`${p}topic_id`]),
    topicName,
    target: String(row[`${p}target`]),
    type: String(row[`${p}type`]) as PublisherType,
    active: toBool(row[`${p}active`]),
    deleted: toBool(row[`${p}deleted`]),
    secondsTimeout: Number(row[`${p}seconds_timeout`]),
    secondsRetry: Number(row[`${p}seconds_retry`]),
    retryMode: String(row[`${p}retry_mode`]) as RetryMode,
    maxAttempts: toNumberOrNull(row[`${p}max_attempts`]),
    chunkSize: toNumberOrNull(row[`${p}chunk_size`]),
    concurrency: toNumberOrNull(row[`${p}concurrency`]),
    secrets: toJson<SigningSecret[]>(row[`${p}secrets`]),
    disabledReason: toStringOrNull(row[`${p}disabled_reason`]),
    failingSince: toDateOrNull(row[`${p}failing_since`]),
    createdAt: toDate(row[`${p}created_at`]),
    updatedAt: toDate(row[`${p}updated_at`]),
  };
}

export function rowToMessage(row: DispatchRow, p = "", topicName = String(row.topic_name)): Message {
  return {
    id: Number(row[`${p}id`]),
    topicId: Number(row[`${p}topic_id`]),
    topicName,
    payload: toJson(row[`${p}payload`]),
    attributes: toJson<{ [key: string]: Json }>(row[`${p}attributes`]),
    idempotencyKey: toStringOrNull(row[`${p}idempotency_key`]),
    receivedAt: toDate(row[`${p}received_at`]),
  };
}

export function rowToDelivery(row: DispatchRow, p = ""): Delivery {
  return {
    id: Number(row[`${p}id`]),
    messageId: Number(row[`${p}message_id`]),
    publisherId: Number(row[`${p}publisher_id`]),
    state: String(row[`${p}state`]) as DeliveryState,
    generation: Number(row[`${p}generation`]),
    attempts: Number(row[`${p}attempts`]),
    step: Number(row[`${p}step`]),
    nextAttemptAt: toDateOrNull(row[`${p}next_attempt_at`]),
    lastStatus: toNumberOrNull(row[`${p}last_status`]),
    lastError: toStringOrNull(row[`${p}last_error`]),
    receivedAt: toDate(row[`${p}received_at`]),
    createdAt: toDate(row[`${p}created_at`]),
    updatedAt: toDate(row[`${p}updated_at`]),
    finishedAt: toDateOrNull(row[`${p}finished_at`]),
  };
}

export function rowToAttempt(row: DispatchRow): Attempt {
  return {
    id: Number(row.id),
    deliveryId: Number(row.delivery_id),
    attempt: Number(row.attempt),
    taskId: toNumberOrNull(row.task_id),
    at: toDate(row.at),
    durationMs: Number(row.duration_ms),
    status: toNumberOrNull(row.status),
    outcome: String(row.outcome) as AttemptOutcome,
    error: toStringOrNull(row.error),
    responseBody: toStringOrNull(row.response_body),
    request: toJson<Attempt["request"]>(row.request),
    nextAttemptAt: toDateOrNull(row.next_attempt_at),
  };
}

/** `changes` without the keys whose value is undefined: a change that says nothing of a field leaves it. */
export function definedOnly<T extends object>(changes: T): Partial<T> {
  return Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** An attribute's value as the search index keeps it: a string as it is, anything else as its JSON text. */
export function attributeText(value: Json): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
