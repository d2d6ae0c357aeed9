/**
 * The task model as every layer above the store sees it. Stores map their rows to this shape.
 */
import type { ErrorRecord } from "./errors.ts";
import type { TaskState } from "./states.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type TaskProgress = { percent: number; info?: Json };

export type Task = {
  id: number;
  queue: string;
  type: string;
  data: Json;
  priority: number;
  state: TaskState;
  /** Number of the current (or last) attempt; 0 until first claimed. */
  attempt: number;
  maxAttempts: number;
  /** How many times the node running this task died under it. */
  stalls: number;
  runAt: Date;
  key: string | null;
  progress: TaskProgress | null;
  result: Json | null;
  /** The last error, if any attempt failed. */
  error: ErrorRecord | null;
  /** Earlier errors, oldest first, bounded (see MAX_ERROR_HISTORY). */
  errors: ErrorRecord[];
  timeoutMs: number | null;
  /** Backoff base for this task's retries, overriding its type's. */
  backoffMs: number | null;
  /** The node that runs (or last ran) the task. */
  node: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
};

/** How many past errors a task keeps. */
export const MAX_ERROR_HISTORY = 10;

/** What it takes to add a task; the rest has defaults. */
export type TaskInput = {
  type: string;
  data?: Json;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  runAt?: Date;
  /** Milliseconds from now; an alternative to runAt. */
  delay?: number;
  key?: string | null;
  timeoutMs?: number | null;
  backoffMs?: number | null;
};

/** Names of the events in the event log, one per transition plus progress. */
export const TASK_EVENT_TYPES = [
  "task.created",
  "task.promoted",
  "task.started",
  "task.progress",
  "task.completed",
  "task.failed",
  "task.retrying",
  "task.cancelled",
  "task.rerun",
  "task.rescued",
  "task.deleted",
] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

/**
 * Names of the log's events that belong to no task: an application channel's message, the cluster's events on
 * the `nodes` channel (docs/live-protocol.md), and dispatch's on `dispatch` and `topic:<name>` (docs/dispatch.md).
 */
export const CHANNEL_EVENT_TYPES = [
  "message",
  "node.joined",
  "node.left",
  "leader.changed",
  "service.crashed",
  "service.restarted",
  "service.gave-up",
  "queue.paused",
  "queue.resumed",
  "queue.configured",
  "task.stopped",
  "node.fenced",
  "node.unfenced",
  "stats.bucket",
  "dispatch.received",
  "delivery.attempted",
  "delivery.changed",
  "publisher.changed",
  "topic.changed",
] as const;
export type ChannelEventType = (typeof CHANNEL_EVENT_TYPES)[number];
export type LogEventType = TaskEventType | ChannelEventType;

/**
 * One event of the log: a task's (`channel` null) or a channel's (`taskId` 0, `queue` ""). `offset` is strictly
 * increasing and gap-free in commit order.
 */
export type LogEvent = {
  offset: number;
  type: LogEventType;
  taskId: number;
  queue: string;
  channel: string | null;
  data: Json;
  at: Date;
};

/** One event of a task. */
export type TaskEvent = {
  offset: number;
  type: TaskEventType;
  taskId: number;
  queue: string;
  data: Json;
  at: Date;
};
