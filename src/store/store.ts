/**
 * The Store: every operation Conveyor performs on its durable state, noun-first (River's driver style),
 * each taking one params object. Core and runtime code talk only to this interface; the SQLite and
 * PostgreSQL drivers implement it and both must pass the same conformance suite (conformance/index.ts).
 *
 * Rules every driver keeps:
 * - each operation is one transaction; a task transition and its event-log entry commit together;
 * - a transition out of `running` names the attempt it belongs to, and does nothing for a stale one;
 * - event offsets are dense and strictly increasing in the order entries became visible, so a reader tailing
 *   `offset > cursor` never skips one (PostgreSQL numbers committed entries when read; SQLite at commit);
 * - `now` comes from the caller, so tests control time and nodes agree on one clock per operation.
 */
import type { ErrorRecord } from "../core/errors.ts";
import type { NormalizedTaskInput } from "../core/task-input.ts";
import type { TaskState } from "../core/states.ts";
import type { ChannelEventType, Json, LogEvent, Task, TaskProgress } from "../core/task.ts";
import type { DispatchStore } from "./dispatch-store.ts";

export type StoreCapabilities = {
  /** Driver name, for logs, metrics and /api/health. */
  readonly driver: string;
  /** Whether processes on different hosts may share this store (false: one host, one file). */
  readonly multiHost: boolean;
  /** Whether the store itself can wake other processes (LISTEN/NOTIFY); otherwise they poll. */
  readonly notifications: boolean;
};

/** A task to insert, checked and with every default applied (core/task-input.ts makes them). */
export type TaskInsert = NormalizedTaskInput;

/** Inputs of a taskInsertMany (by index) that `node` will run at once, having slots free for them. */
export type TaskStartOn = { node: string; indexes: number[] };

export type TaskInsertOutcome = {
  task: Task;
  /** False when an active task with the same key already existed; `task` is then that task. */
  created: boolean;
};

export type TaskListParams = {
  queue?: string;
  states?: TaskState[];
  type?: string;
  key?: string;
  /** Only tasks created at or after this time. */
  createdAfter?: Date;
  /** Only tasks created before this time. */
  createdBefore?: Date;
  /** Only ids from idMin to idMax (both included): the bounded stretch a filtered list reads at a time. */
  idMin?: number;
  idMax?: number;
  /** Cursor: only tasks with an id after this one in the chosen order. */
  after?: number;
  limit: number;
  order: "asc" | "desc";
};

/**
 * A completion of attempt `attempt` of task `id`, whose queue is `queue` (the store checks it: a wrong one matches
 * nothing).
 */
export type TaskCompletion = { id: number; queue: string; attempt: number; result: Json };

export type TaskCancelOutcome = {
  task: Task;
  /** The state the task was in; when already final, nothing changed. */
  previousState: TaskState;
  cancelled: boolean;
};

export type QueueStats = {
  queue: string;
  paused: boolean;
  /** Tasks of this queue each node runs at once, set cluster-wide; null: each node's own setting. */
  concurrency: number | null;
  counts: Record<TaskState, number>;
};

/** One node's completions, failures and timings over a 5-second bucket (histograms over core/stats.ts's bounds). */
export type TaskStatsBucket = {
  at: Date;
  node: string;
  completed: number;
  failed: number;
  retried: number;
  /** Run time (start to end of the attempt) counts per bucket of STATS_BOUNDS_MS. */
  run: number[];
  /** Wait time (due to started) counts per bucket of STATS_BOUNDS_MS. */
  wait: number[];
};

export type NodeRecord = {
  id: string;
  name: string;
  host: string;
  pid: number;
  version: string;
  roles: string[];
  startedAt: Date;
  heartbeatAt: Date;
  /** The node's own report: supervision tree, concurrency, anything the dashboard shows. */
  info: Json;
};

export type RescueOutcome = { task: Task; outcome: "retried" | "failed" };

export type Lease = { name: string; node: string; expiresAt: Date };

/** What a schedule enqueues on each tick, besides its type and data. */
export type ScheduleTaskOptions = {
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number | null;
};

export type ScheduleInput = {
  name: string;
  /** A cron expression (5 or 6 fields, as croner reads it). */
  cron: string;
  timezone: string | null;
  type: string;
  data: Json;
  options: ScheduleTaskOptions;
  enabled: boolean;
};

export type Schedule = ScheduleInput & { lastTick: Date | null; createdAt: Date; updatedAt: Date };

export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Dispatch's operations (topics, publishers, messages, deliveries): dispatch-store.ts. */
  readonly dispatch: DispatchStore;

  /**
   * For a store whose other writers cannot ring this process (SQLite: other processes on the same file): calls
   * `onForeignWrite` within about `intervalMs` of a transaction committed by another process, never for this
   * store's own. Returns how to stop. Stores with notifications (PostgreSQL and its bus) do not have it.
   */
  watchForeignWrites?(onForeignWrite: () => void, intervalMs: number): () => void;
  /** Apply pending migrations in order; returns the names applied now. Safe to run concurrently. */
  migrate(): Promise<{ applied: string[] }>;
  /** Migrations known to the driver, and whether each is applied. */
  migrationStatus(): Promise<{ name: string; applied: boolean }[]>;
  /**
   * Check the store answers a real query and could take a write, within about a second whatever else the store is
   * doing (the health check's answer); rejects with StoreUnavailableError otherwise.
   */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Insert tasks: `queued` when runAt <= now, else `scheduled`. A duplicate active key returns the existing task.
   * With `startOn`, the inputs at `indexes` that are created ready to run start at once on `node`, as if it had
   * claimed them in the same transaction (`running`, attempt 1, both events) — unless their queue is paused.
   * A node passes the tasks it has free slots for: one transaction from enqueue to start.
   */
  taskInsertMany(params: { tasks: TaskInsert[]; now: Date; startOn?: TaskStartOn }): Promise<TaskInsertOutcome[]>;
  taskGet(params: { id: number }): Promise<Task | null>;
  taskList(params: TaskListParams): Promise<Task[]>;
  /** The lowest and highest task ids, or null when there is no task. */
  taskIdRange(): Promise<{ min: number; max: number } | null>;
  /** The first task whose id is `id` or more, with its creation time; null past the last. */
  taskCreatedFrom(params: { id: number }): Promise<{ id: number; createdAt: Date } | null>;
  /**
   * Move up to `limit` queued tasks of `queue` whose type is in `types` to `running` on `node`, ordered by
   * priority (higher first) then id; increments each one's attempt. Claims nothing from a paused queue.
   */
  taskClaim(params: { queue: string; types: string[]; node: string; limit: number; now: Date }): Promise<Task[]>;
  /** Complete running attempts; returns the ids actually completed (stale attempts are skipped). */
  taskComplete(params: { completions: TaskCompletion[]; now: Date }): Promise<number[]>;
  /**
   * Fail a running attempt: back to `scheduled` at `retryAt`, or `failed` for good when `retryAt` is null.
   * Returns the updated task, or null when the attempt is stale.
   */
  taskFail(params: {
    id: number;
    attempt: number;
    error: ErrorRecord;
    retryAt: Date | null;
    now: Date;
  }): Promise<Task | null>;
  /** Cancel a task in any active state. Null when the id is unknown. */
  taskCancel(params: { id: number; reason: string; now: Date }): Promise<TaskCancelOutcome | null>;
  /** Run a failed or cancelled task again from attempt 0. Null when unknown; throws ConflictError when active. */
  taskRerun(params: { id: number; now: Date }): Promise<Task | null>;
  /** Record progress of a running attempt; false when the attempt is stale. */
  taskProgress(params: { id: number; attempt: number; progress: TaskProgress; now: Date }): Promise<boolean>;
  /** Move due scheduled tasks to queued; returns the queues that received tasks. */
  taskPromote(params: { now: Date; limit: number }): Promise<{ count: number; queues: string[] }>;
  /** The earliest runAt of any scheduled task, to time the next promotion. */
  taskNextRunAt(): Promise<Date | null>;
  /** Current state and attempt of the given tasks (to notice a cancel made by another process). */
  taskStates(params: { ids: number[] }): Promise<{ id: number; state: TaskState; attempt: number; type: string }[]>;
  /**
   * Put tasks running on nodes silent since `deadBefore` (or without a node row) back to `queued` at once,
   * counting a stall; a task out of attempts or past `maxStalls` stalls fails instead. Returns each outcome.
   * The `rescuer` node's own tasks are never touched: it is alive, whatever its row says.
   *
   * With `abandoned`: the rescuer's own running tasks among these ids instead (`deadBefore` unused), those it stopped
   * when it fenced itself (runtime/fence.ts), with the same stall counted: a task whose run keeps its node from the
   * store (an event loop blocked past the fence's threshold) then fails after `maxStalls`, as one that keeps killing
   * its node does, rather than run again for ever.
   */
  taskRescue(params: {
    rescuer: string;
    deadBefore: Date;
    maxStalls: number;
    now: Date;
    abandoned?: number[];
  }): Promise<RescueOutcome[]>;
  /** Hand a node's running tasks back to `queued` at once (graceful shutdown); the attempt is not counted. */
  taskRelease(params: { node: string; ids?: number[]; now: Date }): Promise<number[]>;
  /**
   * Delete the finished tasks among `ids` (a person's action, unlike the pruner's), each with a task.deleted event;
   * returns the ids deleted. Active tasks are left alone: cancel them first.
   */
  taskDelete(params: { ids: number[]; now: Date }): Promise<number[]>;
  /** Delete up to `limit` tasks that finished before `before`; returns how many. */
  taskPrune(params: { before: Date; limit: number }): Promise<number>;

  queueStats(): Promise<QueueStats[]>;
  queueSetPaused(params: { queue: string; paused: boolean; now: Date }): Promise<void>;
  /** Set how many tasks of `queue` each node runs at once (null: each node's own setting). */
  queueSetConcurrency(params: { queue: string; concurrency: number | null; now: Date }): Promise<void>;

  /** Records a node's bucket of task statistics (a repeat of one bucket replaces it). */
  statsAppend(params: { bucket: TaskStatsBucket }): Promise<void>;
  /** Every node's buckets from `since` on, oldest first. */
  statsList(params: { since: Date }): Promise<TaskStatsBucket[]>;
  /** Deletes buckets older than `before`; returns how many. */
  statsPrune(params: { before: Date }): Promise<number>;

  /** Events after `after`, in offset order. */
  eventList(params: { after: number; limit: number; taskId?: number }): Promise<LogEvent[]>;
  /** The highest committed offset (0 when the log is empty). */
  /**
   * The log's epoch (random, made with the log, so that an offset is never trusted across two lives of a log), the
   * first offset it still holds (the last + 1 when pruning emptied it) and the last offset given.
   */
  eventLogInfo(): Promise<{ epoch: string; oldestOffset: number; lastOffset: number }>;
  /** Appends events that belong to no task (an application channel's messages, the cluster's events), in one transaction. */
  eventAppend(params: { events: { type: ChannelEventType; channel: string; data: Json }[]; now: Date }): Promise<void>;
  eventLastOffset(): Promise<number>;
  /**
   * Delete old events: up to `limit` log entries recorded before `before`, where an entry holds the events
   * one transaction recorded. Returns how many entries. The entry with the last offset always stays.
   */
  eventPrune(params: { before: Date; limit: number }): Promise<number>;

  /**
   * Take or renew the lease `name` for `node` until now + ttlMs. Succeeds when the lease is free, expired, or
   * already this node's; returns whether `node` holds it after the call.
   */
  leaseAcquire(params: { name: string; node: string; ttlMs: number; now: Date }): Promise<boolean>;
  /** Give the lease up, if `node` holds it. */
  leaseRelease(params: { name: string; node: string }): Promise<void>;
  leaseGet(params: { name: string }): Promise<Lease | null>;

  /** Create or replace a schedule by name; its lastTick is kept when it exists. */
  scheduleUpsert(params: { schedule: ScheduleInput; now: Date }): Promise<Schedule>;
  scheduleList(): Promise<Schedule[]>;
  scheduleGet(params: { name: string }): Promise<Schedule | null>;
  /** Returns whether a schedule was deleted. */
  scheduleDelete(params: { name: string }): Promise<boolean>;
  /**
   * Fire tick `tick` of schedule `name`: in one transaction, move its lastTick forward to `tick` and insert
   * `task`. Returns null, inserting nothing, when that tick (or a later one) has already fired or the
   * schedule is gone or disabled — this is what makes each tick fire once however many nodes try.
   */
  scheduleFire(params: { name: string; tick: Date; task: TaskInsert; now: Date }): Promise<TaskInsertOutcome | null>;

  /** Insert or refresh this node's row. */
  nodeHeartbeat(params: { node: Omit<NodeRecord, "heartbeatAt">; now: Date }): Promise<void>;
  nodeList(): Promise<NodeRecord[]>;
  nodeRemove(params: { id: string }): Promise<void>;
  /** Delete rows of nodes silent since `before`; returns how many. */
  nodePrune(params: { before: Date }): Promise<number>;
}
