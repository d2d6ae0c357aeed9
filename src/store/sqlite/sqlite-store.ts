/**
 * The SQLite driver, on node:sqlite: the Store class and its operations. One file, WAL journal, synchronous=NORMAL
 * (a power cut may lose the last transactions but never corrupts; a process crash loses nothing). SQLite has a
 * single writer, so every operation that writes is one `BEGIN IMMEDIATE` transaction (#write; taskPrune, one per
 * window of tasks) and claims need no row locks. Several processes on one host may share the file; they wait for
 * each other through busy_timeout.
 *
 * node:sqlite is synchronous: each operation runs to completion before any other code in this process, which is
 * also why two calls from one process never interleave inside a transaction.
 *
 * Beside it: statements.ts (queries/*.sql and the prepared statements), journal.ts (a transaction's events and count
 * changes, written at commit), insert.ts (taskInsertMany's paths), row-mapping.ts, migrate.ts.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue, type SQLOutputValue } from "node:sqlite";
import { ConflictError, type ErrorRecord } from "../../core/errors.ts";
import { isStoreUnavailable, StoreUnavailableError } from "../../core/store-unavailable.ts";
import { canTransition, TASK_STATES, type TaskState, TRANSITIONS } from "../../core/states.ts";
import type { ChannelEventType, Json, LogEvent, Task, TaskProgress } from "../../core/task.ts";
import { eventsAfter, type LogEntry } from "../event-log.ts";
import { assembleQueueStats } from "../queue-stats.ts";
import type {
  Lease,
  NodeRecord,
  QueueStats,
  RescueOutcome,
  Schedule,
  ScheduleInput,
  Store,
  StoreCapabilities,
  TaskCancelOutcome,
  TaskCompletion,
  TaskInsert,
  TaskInsertOutcome,
  TaskListParams,
  TaskStatsBucket,
  TaskStartOn,
} from "../store.ts";
import type { DispatchStore } from "../dispatch-store.ts";
import { SqliteDispatchStore } from "./dispatch.ts";
import { insertTasks } from "./insert.ts";
import { TransactionJournal } from "./journal.ts";
import { createLedger, migrate, migrationStatus } from "./migrate.ts";
import {
  appendError,
  claimedToTask,
  type Row,
  rowToLease,
  rowToNode,
  rowToSchedule,
  rowToTask,
} from "./row-mapping.ts";
import { PreparedStatements } from "./statements.ts";

/** Completions per statement (taskComplete). */
const COMPLETE_ROWS = 50;

/** Tasks the pruner looks at per transaction. */
const PRUNE_WINDOW = 1000;

export type SqliteStoreOptions = {
  /** Path of the database file (created with its folder), or ":memory:". */
  path: string;
  /**
   * How long a write waits for another process's write lock before failing with store_unavailable, in ms. Default
   * 5000. The wait does not block the event loop.
   */
  busyTimeoutMs?: number;
};

/**
 * How long a read may block the event loop waiting on a lock. In WAL mode readers wait only in rare moments (another
 * connection recovering the WAL after a crash), briefly; writes wait in #write, without blocking.
 */
const READ_BUSY_MS = 100;

/** The health check's wait for the write lock: an answer within a second or two. */
const PING_WAIT_MS = 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { driver: "sqlite", multiHost: false, notifications: false };
  readonly path: string;
  readonly dispatch: DispatchStore;
  readonly #db: DatabaseSync;
  readonly #statements: PreparedStatements;
  readonly #journal: TransactionJournal;
  readonly #busyTimeoutMs: number;

  readonly #watchers = new Set<() => void>();

  constructor(options: SqliteStoreOptions) {
    this.path = options.path;
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new DatabaseSync(options.path);
    this.#busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
    // Opening waits as SQLite does (another process may be creating the file); from then on reads wait at most
    // READ_BUSY_MS, writes in #write and migrations in migrate.
    this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA synchronous = NORMAL");
    createLedger(this.#db);
    this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_MS}`);
    this.#statements = new PreparedStatements(this.#db);
    this.#journal = new TransactionJournal(this.#statements);
    this.dispatch = new SqliteDispatchStore({
      db: this.#db,
      write: (work) => this.#write(work),
      insertTasks: (tasks, now) => insertTasks(this.#statements, this.#journal, tasks, now),
      event: ({ type, channel, data }, now) => this.#journal.event(type, 0, channel, data, now),
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------------

  /**
   * Runs `work` in one write transaction (BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlock). The
   * events and count changes `work` records in the journal are written just before COMMIT.
   *
   * When the lock is free (the usual case) all of it runs now, synchronously. When another process holds it, this
   * waits without blocking the event loop (SQLite's own busy handler would sleep in it, freezing every request,
   * timer and heartbeat of the node for as long as the lock is held), and after `waitMs` fails with
   * StoreUnavailableError.
   */
  #write<T>(work: () => T, waitMs = this.#busyTimeoutMs): Promise<T> {
    const deadline = Date.now() + waitMs;
    try {
      if (this.#tryBegin()) return Promise.resolve(this.#commit(work));
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#writeWhenUnlocked(work, deadline);
  }

  /**
   * Probes for the lock, backing off from 2 to 50 ms as SQLite's own busy handler does, until `deadline`. A probe
   * does not wait (busy_timeout 0), so waiting writes cost the event loop microseconds however many there are, and
   * each gives up at its own deadline (the health check's is a second).
   */
  async #writeWhenUnlocked<T>(work: () => T, deadline: number): Promise<T> {
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new StoreUnavailableError("the SQLite database is locked by another process; try again shortly");
      }
      await sleep(Math.min(pause, left));
      if (this.#tryBegin()) return this.#commit(work);
    }
  }

  /** BEGIN IMMEDIATE without waiting: false when another connection holds the write lock. */
  #tryBegin(): boolean {
    this.#db.exec("PRAGMA busy_timeout = 0");
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      return true;
    } catch (error) {
      if (isStoreUnavailable(error)) return false;
      throw error;
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_MS}`);
    }
  }

  /** Runs `work` inside the transaction #tryBegin opened, and commits it (or rolls it back and throws). */
  #commit<T>(work: () => T): T {
    try {
      const result = work();
      this.#journal.flush();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#journal.discard();
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  // ---- migrations --------------------------------------------------------------------------------------

  async migrate(): Promise<{ applied: string[] }> {
    // Another process migrating at the same moment holds the lock for as long as its migration takes: migrations
    // run once, at start, and wait for it as SQLite does.
    this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    try {
      return { applied: migrate(this.#db) };
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_MS}`);
    }
  }

  async migrationStatus(): Promise<{ name: string; applied: boolean }[]> {
    return migrationStatus(this.#db);
  }

  /**
   * A read, and the write lock taken and let go at once (an empty transaction writes nothing): a node whose file
   * another process keeps locked cannot heartbeat, claim or complete, and says so within PING_WAIT_MS.
   */
  async ping(): Promise<void> {
    this.#db.prepare("SELECT count(*) FROM migrations").get();
    await this.#write(() => {}, PING_WAIT_MS);
  }

  async close(): Promise<void> {
    for (const stop of this.#watchers) stop();
    if (this.#db.isOpen) this.#db.close();
  }

  /**
   * SQLite's data_version changes when another connection commits, never for this connection's own commits: read
   * on the store's own connection (a microsecond, no I/O beyond the shared WAL index), it tells this process that
   * another one wrote, so its workers look at once rather than at their next poll.
   */
  watchForeignWrites(onForeignWrite: () => void, intervalMs: number): () => void {
    const version = this.#db.prepare("PRAGMA data_version");
    let last = version.get()!.data_version;
    const timer = setInterval(() => {
      if (!this.#db.isOpen) return;
      const now = version.get()!.data_version;
      if (now === last) return;
      last = now;
      onForeignWrite();
    }, intervalMs);
    timer.unref();
    const stop = () => {
      clearInterval(timer);
      this.#watchers.delete(stop);
    };
    this.#watchers.add(stop);
    return stop;
  }

  // ---- tasks -------------------------------------------------------------------------------------------

  async taskInsertMany({
    tasks,
    now,
    startOn,
  }: {
    tasks: TaskInsert[];
    now: Date;
    startOn?: TaskStartOn;
  }): Promise<TaskInsertOutcome[]> {
    if (tasks.length === 0) return [];
    return this.#write(() => insertTasks(this.#statements, this.#journal, tasks, now, startOn));
  }

  async taskGet({ id }: { id: number }): Promise<Task | null> {
    const row = this.#statements.get("taskGet").get({ id });
    return row === undefined ? null : rowToTask(row);
  }

  async taskList(params: TaskListParams): Promise<Task[]> {
    // Built here rather than in a .sql file: the filters are optional, and only their presence varies. The states,
    // from a closed list, are literals, so that a partial index over a state can serve them.
    const where: string[] = [];
    const values: Row = { limit: params.limit };
    const add = (condition: string, name: string, value: SQLInputValue) => {
      where.push(condition);
      values[name] = value;
    };
    if (params.queue !== undefined) add("queue = :queue", "queue", params.queue);
    if (params.type !== undefined) add("type = :type", "type", params.type);
    if (params.key !== undefined) add("key = :key", "key", params.key);
    let index = "";
    if (params.states !== undefined) {
      const states = TASK_STATES.filter((state) => params.states!.includes(state));
      where.push(states.length === 0 ? "false" : `state IN (${states.map((s) => `'${s}'`).join(", ")})`);
      // SQLite uses a partial index only for a query that repeats its condition word for word; and, without
      // statistics, it prefers walking the primary key in order through every finished task to sorting the few
      // running ones: told which index to use.
      if (states.length > 0 && states.every((state) => state === "failed" || state === "cancelled")) {
        where.push("state IN ('failed', 'cancelled')");
      }
      if (states.length === 1 && states[0] === "running" && params.key === undefined && params.idMin === undefined) {
        where.push("state = 'running'");
        index = "INDEXED BY tasks_running_node";
      }
    }
    if (params.createdAfter !== undefined)
      add("created_at >= :createdAfter", "createdAfter", params.createdAfter.getTime());
    if (params.createdBefore !== undefined)
      add("created_at < :createdBefore", "createdBefore", params.createdBefore.getTime());
    if (params.idMin !== undefined) add("id >= :idMin", "idMin", params.idMin);
    if (params.idMax !== undefined) add("id <= :idMax", "idMax", params.idMax);
    if (params.after !== undefined) add(params.order === "asc" ? "id > :after" : "id < :after", "after", params.after);
    const sql = `SELECT * FROM tasks ${index} ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY id ${params.order === "asc" ? "ASC" : "DESC"} LIMIT :limit`;
    return this.#db.prepare(sql).all(values).map(rowToTask);
  }

  async taskIdRange(): Promise<{ min: number; max: number } | null> {
    const row = this.#statements.get("taskIdRange").get({}) as { min: number | null; max: number | null };
    return row.min === null || row.max === null ? null : { min: row.min, max: row.max };
  }

  async taskCreatedFrom({ id }: { id: number }): Promise<{ id: number; createdAt: Date } | null> {
    const row = this.#statements.get("taskCreatedFrom").get({ id }) as { id: number; created_at: number } | undefined;
    return row === undefined ? null : { id: row.id, createdAt: new Date(row.created_at) };
  }

  async taskClaim(params: { queue: string; types: string[]; node: string; limit: number; now: Date }): Promise<Task[]> {
    if (params.limit <= 0 || params.types.length === 0) return [];
    return this.#write(() => {
      const journal = this.#journal;
      const rows = this.#statements.get("taskClaim").all({
        queue: params.queue,
        types: JSON.stringify(params.types),
        node: params.node,
        limit: params.limit,
        now: params.now.getTime(),
        ref: journal.ref(),
      });
      const claimedAt = params.now.getTime();
      const tasks = (rows as unknown as SQLOutputValue[][])
        .map((row) => claimedToTask(row, params.node, claimedAt))
        .sort(byPriorityThenId);
      if (tasks.length > 0) journal.count(params.queue, "queued", "running", tasks.length);
      for (const task of tasks)
        journal.event("task.started", task.id, task.queue, { attempt: task.attempt, node: params.node }, params.now);
      return tasks;
    });
  }

  async taskComplete({ completions, now }: { completions: TaskCompletion[]; now: Date }): Promise<number[]> {
    if (completions.length === 0) return [];
    return this.#write(() => {
      const journal = this.#journal;
      const nowMs = now.getTime();
      const ref = journal.ref();
      const ids: number[] = [];
      const complete = (chunk: TaskCompletion[]) => {
        const args: SQLInputValue[] = [nowMs, ref];
        for (const { id, queue, attempt, result } of chunk)
          args.push(id, attempt, queue, JSON.stringify(result ?? null));
        const rows = this.#statements
          .withRows("taskComplete", "(?, ?, ?, ?)", chunk.length)
          .all(...args) as unknown as [number][];
        const completed = rows.length === chunk.length ? null : new Set(rows.map(([id]) => id));
        for (const { id, queue, attempt } of chunk) {
          if (completed !== null && !completed.has(id)) continue;
          ids.push(id);
          journal.event("task.completed", id, queue, { attempt }, now);
          journal.count(queue, "running", "completed");
        }
      };
      // A statement names each task once, so that the ids it returns say which entries completed. A task named
      // again goes in the next statement, which sees the first one's change: as one statement per entry would.
      let chunk: TaskCompletion[] = [];
      const inChunk = new Set<number>();
      for (const completion of completions) {
        if (chunk.length === COMPLETE_ROWS || inChunk.has(completion.id)) {
          complete(chunk);
          chunk = [];
          inChunk.clear();
        }
        chunk.push(completion);
        inChunk.add(completion.id);
      }
      complete(chunk);
      return ids;
    });
  }

  async taskFail(params: {
    id: number;
    attempt: number;
    error: ErrorRecord;
    retryAt: Date | null;
    now: Date;
  }): Promise<Task | null> {
    return this.#write(() => {
      const journal = this.#journal;
      const current = this.#statements.get("taskGetRunningAttempt").get({ id: params.id, attempt: params.attempt });
      if (current === undefined) return null;
      const history = appendError(current.errors, params.error);
      const row = this.#statements.get("taskFail").get({
        id: params.id,
        attempt: params.attempt,
        error: JSON.stringify(params.error),
        errors: history,
        ref: journal.ref(),
        run_at: params.retryAt?.getTime() ?? null,
        now: params.now.getTime(),
      });
      if (row === undefined) return null;
      const task = rowToTask(row);
      const data = { attempt: params.attempt, error: params.error.message };
      journal.count(task.queue, "running", task.state);
      if (params.retryAt === null) journal.event("task.failed", task.id, task.queue, data, params.now);
      else
        journal.event(
          "task.retrying",
          task.id,
          task.queue,
          { ...data, runAt: params.retryAt.toISOString() },
          params.now,
        );
      return task;
    });
  }

  async taskCancel({ id, reason, now }: { id: number; reason: string; now: Date }): Promise<TaskCancelOutcome | null> {
    return this.#write(() => {
      const current = this.#statements.get("taskGet").get({ id });
      if (current === undefined) return null;
      const before = rowToTask(current);
      if (!canTransition("cancel", before.state))
        return { task: before, previousState: before.state, cancelled: false };
      const error: ErrorRecord = {
        name: "CancelledError",
        message: reason,
        attempt: before.attempt,
        at: now.toISOString(),
      };
      const row = this.#statements.get("taskCancel").get({
        id,
        error: JSON.stringify(error),
        errors: appendError(current.errors, error),
        now: now.getTime(),
        ref: this.#journal.ref(),
      });
      if (row === undefined) throw new Error(`task ${id} changed inside its own transaction`);
      const task = rowToTask(row);
      this.#journal.event("task.cancelled", id, task.queue, { previousState: before.state, reason }, now);
      this.#journal.count(task.queue, before.state, "cancelled");
      return { task, previousState: before.state, cancelled: true };
    });
  }

  async taskRerun({ id, now }: { id: number; now: Date }): Promise<Task | null> {
    return this.#write(() => {
      const current = this.#statements.get("taskGet").get({ id });
      if (current === undefined) return null;
      const state = String(current.state) as TaskState;
      if (!canTransition("rerun", state)) {
        throw new ConflictError(
          "invalid_state",
          `task ${id} is ${state}; only ${TRANSITIONS.rerun.from.join(" or ")} tasks can be retried`,
        );
      }
      let row: Row | undefined;
      try {
        row = this.#statements.get("taskRerun").get({ id, now: now.getTime(), ref: this.#journal.ref() });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new ConflictError("duplicate_key", `another active task holds key ${String(current.key)}`);
        }
        throw error;
      }
      if (row === undefined) return null;
      const task = rowToTask(row);
      this.#journal.event("task.rerun", id, task.queue, { previousState: state }, now);
      this.#journal.count(task.queue, state, "queued");
      return task;
    });
  }

  async taskProgress({
    id,
    attempt,
    progress,
    now,
  }: {
    id: number;
    attempt: number;
    progress: TaskProgress;
    now: Date;
  }): Promise<boolean> {
    return this.#write(() => {
      const row = this.#statements.get("taskProgress").get({ id, attempt, progress: JSON.stringify(progress) });
      if (row === undefined) return false;
      this.#journal.event("task.progress", id, String(row.queue), { attempt, ...progress }, now);
      return true;
    });
  }

  async taskPromote({ now, limit }: { now: Date; limit: number }): Promise<{ count: number; queues: string[] }> {
    return this.#write(() => {
      const journal = this.#journal;
      const rows = this.#statements.get("taskPromote").all({ now: now.getTime(), limit, ref: journal.ref() });
      const queues = new Set<string>();
      for (const row of rows) {
        queues.add(String(row.queue));
        journal.count(String(row.queue), "scheduled", "queued");
        journal.event("task.promoted", Number(row.id), String(row.queue), null, now);
      }
      return { count: rows.length, queues: [...queues] };
    });
  }

  async taskNextRunAt(): Promise<Date | null> {
    const row = this.#statements.get("taskNextRunAt").get({});
    return row?.run_at == null ? null : new Date(Number(row.run_at));
  }

  async taskStates({
    ids,
  }: {
    ids: number[];
  }): Promise<{ id: number; state: TaskState; attempt: number; type: string }[]> {
    if (ids.length === 0) return [];
    return this.#statements
      .get("taskStates")
      .all({ ids: JSON.stringify(ids) })
      .map((row) => ({
        id: Number(row.id),
        state: String(row.state) as TaskState,
        attempt: Number(row.attempt),
        type: String(row.type),
      }));
  }

  async taskRescue({
    rescuer,
    deadBefore,
    maxStalls,
    now,
    abandoned,
  }: {
    rescuer: string;
    deadBefore: Date;
    maxStalls: number;
    now: Date;
    abandoned?: number[];
  }): Promise<RescueOutcome[]> {
    return this.#write(() => {
      const journal = this.#journal;
      const outcomes: RescueOutcome[] = [];
      const stalled =
        abandoned === undefined
          ? this.#statements.get("taskRunningOnDeadNodes").all({ rescuer, dead_before: deadBefore.getTime() })
          : this.#statements.get("taskRunningAmong").all({ node: rescuer, ids: JSON.stringify(abandoned) });
      for (const current of stalled) {
        const before = rowToTask(current);
        const final = before.stalls + 1 > maxStalls || before.attempt >= before.maxAttempts;
        const error: ErrorRecord = {
          name: "StalledError",
          message: `node ${before.node ?? "?"} stopped while running attempt ${before.attempt} (stall ${before.stalls + 1})`,
          attempt: before.attempt,
          at: now.toISOString(),
        };
        const params = {
          id: before.id,
          attempt: before.attempt,
          error: JSON.stringify(error),
          errors: appendError(current.errors, error),
          now: now.getTime(),
          ref: journal.ref(),
        };
        const row = this.#statements.get(final ? "taskRescueFail" : "taskRescueRetry").get(params);
        if (row === undefined) continue;
        const task = rowToTask(row);
        journal.event(
          final ? "task.failed" : "task.rescued",
          task.id,
          task.queue,
          { attempt: before.attempt, node: before.node, stalls: task.stalls, error: error.message },
          now,
        );
        journal.count(task.queue, "running", task.state);
        outcomes.push({ task, outcome: final ? "failed" : "retried" });
      }
      return outcomes;
    });
  }

  async taskRelease({ node, ids, now }: { node: string; ids?: number[]; now: Date }): Promise<number[]> {
    return this.#write(() => {
      const journal = this.#journal;
      const rows = this.#statements.get("taskRelease").all({
        node,
        ids: ids === undefined ? null : JSON.stringify(ids),
        now: now.getTime(),
        ref: journal.ref(),
      });
      for (const row of rows) {
        journal.count(String(row.queue), "running", "queued");
        journal.event(
          "task.rescued",
          Number(row.id),
          String(row.queue),
          { attempt: Number(row.attempt), node, released: true },
          now,
        );
      }
      return rows.map((row) => Number(row.id)).sort((a, b) => a - b);
    });
  }

  /**
   * Walks tasks in id order, a window at a time, deleting those finished before `before`. Ids grow with
   * createdAt, and a task finishes after it is created, so the walk ends at the first task created at or
   * after `before`: what lies beyond cannot qualify. Tasks it passes over (still active, or finished later)
   * are few, and are looked at again by the next call.
   */
  async taskDelete({ ids, now }: { ids: number[]; now: Date }): Promise<number[]> {
    if (ids.length === 0) return [];
    return this.#write(() => {
      const finished = this.#statements.get("taskFinishedAmong").all({ ids: JSON.stringify(ids) });
      if (finished.length === 0) return [];
      const deleted = finished.map((row) => Number(row.id)).sort((a, b) => a - b);
      this.#statements.get("taskDelete").run({ ids: JSON.stringify(deleted) });
      for (const row of [...finished].sort((a, b) => Number(a.id) - Number(b.id))) {
        const state = String(row.state) as TaskState;
        this.#journal.count(String(row.queue), state, null);
        this.#journal.event("task.deleted", Number(row.id), String(row.queue), { state }, now);
      }
      return deleted;
    });
  }

  async taskPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    const cutoff = before.getTime();
    let deleted = 0;
    let after = 0;
    let walking = true;
    while (walking && deleted < limit) {
      deleted += await this.#write(() => {
        const window = this.#statements.get("taskPruneWindow").all({ after, size: PRUNE_WINDOW });
        walking = window.length === PRUNE_WINDOW;
        const ids: number[] = [];
        for (const row of window) {
          if (Number(row.created_at) >= cutoff) {
            walking = false;
            break;
          }
          if (deleted + ids.length === limit) break;
          after = Number(row.id);
          if (row.finished_at !== null && Number(row.finished_at) < cutoff) {
            ids.push(after);
            this.#journal.count(String(row.queue), String(row.state) as TaskState, null);
          }
        }
        if (ids.length > 0) this.#statements.get("taskDelete").run({ ids: JSON.stringify(ids) });
        return ids.length;
      });
    }
    return deleted;
  }

  // ---- queues ------------------------------------------------------------------------------------------

  async queueStats(): Promise<QueueStats[]> {
    return assembleQueueStats(
      this.#statements
        .get("queueCounts")
        .all({})
        .map((row) => ({ queue: String(row.queue), state: String(row.state), count: Number(row.count) })),
      this.#statements
        .get("queueList")
        .all({})
        .map((row) => ({
          queue: String(row.name),
          paused: Number(row.paused) === 1,
          concurrency: row.concurrency === null ? null : Number(row.concurrency),
        })),
    );
  }

  async queueSetPaused({ queue, paused, now }: { queue: string; paused: boolean; now: Date }): Promise<void> {
    await this.#write(() =>
      this.#statements.get("queueSetPaused").run({ name: queue, paused: paused ? 1 : 0, now: now.getTime() }),
    );
  }

  async queueSetConcurrency({
    queue,
    concurrency,
    now,
  }: {
    queue: string;
    concurrency: number | null;
    now: Date;
  }): Promise<void> {
    await this.#write(() =>
      this.#statements.get("queueSetConcurrency").run({ name: queue, concurrency, now: now.getTime() }),
    );
  }

  async statsAppend({ bucket }: { bucket: TaskStatsBucket }): Promise<void> {
    const { at, node, completed, failed, retried, run, wait } = bucket;
    await this.#write(() =>
      this.#statements.get("statsAppend").run({
        at: at.getTime(),
        node,
        completed,
        failed,
        retried,
        run: JSON.stringify(run),
        wait: JSON.stringify(wait),
      }),
    );
  }

  async statsList({ since }: { since: Date }): Promise<TaskStatsBucket[]> {
    return this.#statements
      .get("statsList")
      .all({ since: since.getTime() })
      .map((row) => ({
        at: new Date(Number(row.at)),
        node: String(row.node),
        completed: Number(row.completed),
        failed: Number(row.failed),
        retried: Number(row.retried),
        run: JSON.parse(String(row.run)) as number[],
        wait: JSON.parse(String(row.wait)) as number[],
      }));
  }

  async statsPrune({ before }: { before: Date }): Promise<number> {
    return this.#write(() => Number(this.#statements.get("statsPrune").run({ before: before.getTime() }).changes));
  }

  // ---- events ------------------------------------------------------------------------------------------

  async eventList({ after, limit, taskId }: { after: number; limit: number; taskId?: number }): Promise<LogEvent[]> {
    let rows: Row[];
    if (taskId === undefined) {
      // Each row holds at least one event, and the first may hold only events at or before `after`.
      rows = this.#statements.get("eventLogAfter").all({ after, limit: limit + 1 });
    } else {
      const refs = this.#statements.get("taskEventRefs").get({ id: taskId });
      const offsets =
        refs === undefined
          ? []
          : String(refs.event_refs)
              .split(" ")
              .filter((ref) => ref !== "")
              .map(Number);
      rows = offsets.length === 0 ? [] : this.#statements.get("eventLogRows").all({ offsets: JSON.stringify(offsets) });
    }
    const logRows = rows.map((row) => ({
      offset: Number(row.offset),
      at: new Date(Number(row.at)),
      entries: JSON.parse(String(row.events)) as LogEntry[],
    }));
    return eventsAfter(logRows, { after, limit, taskId });
  }

  async eventLastOffset(): Promise<number> {
    return Number(this.#statements.get("eventLogNextOffset").get({})!.offset) - 1;
  }

  async eventLogInfo(): Promise<{ epoch: string; oldestOffset: number; lastOffset: number }> {
    const lastOffset = await this.eventLastOffset();
    const oldest = this.#statements.get("eventLogOldestOffset").get({});
    return {
      epoch: String(this.#statements.get("eventLogEpoch").get({})!.epoch),
      oldestOffset: oldest === undefined ? lastOffset + 1 : Number(oldest.offset),
      lastOffset,
    };
  }

  async eventAppend({
    events,
    now,
  }: {
    events: { type: ChannelEventType; channel: string; data: Json }[];
    now: Date;
  }): Promise<void> {
    if (events.length === 0) return;
    await this.#write(() => {
      for (const { type, channel, data } of events) this.#journal.event(type, 0, channel, data, now);
    });
  }

  /** Deletes up to `limit` log rows (each one transaction's events) recorded before `before`; returns how many. */
  async eventPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    return this.#write(() =>
      Number(this.#statements.get("eventLogPrune").run({ before: before.getTime(), limit }).changes),
    );
  }

  // ---- leases and schedules ---------------------------------------------------------------------------

  async leaseAcquire({
    name,
    node,
    ttlMs,
    now,
  }: {
    name: string;
    node: string;
    ttlMs: number;
    now: Date;
  }): Promise<boolean> {
    return this.#write(
      () =>
        this.#statements
          .get("leaseAcquire")
          .get({ name, node, expires_at: now.getTime() + ttlMs, now: now.getTime() }) !== undefined,
    );
  }

  async leaseRelease({ name, node }: { name: string; node: string }): Promise<void> {
    await this.#write(() => this.#statements.get("leaseRelease").run({ name, node }));
  }

  async leaseGet({ name }: { name: string }): Promise<Lease | null> {
    const row = this.#statements.get("leaseGet").get({ name });
    return row === undefined ? null : rowToLease(row);
  }

  async scheduleUpsert({ schedule, now }: { schedule: ScheduleInput; now: Date }): Promise<Schedule> {
    return this.#write(() =>
      rowToSchedule(
        this.#statements.get("scheduleUpsert").get({
          name: schedule.name,
          cron: schedule.cron,
          timezone: schedule.timezone,
          type: schedule.type,
          data: JSON.stringify(schedule.data),
          options: JSON.stringify(schedule.options),
          enabled: schedule.enabled ? 1 : 0,
          now: now.getTime(),
        })!,
      ),
    );
  }

  async scheduleList(): Promise<Schedule[]> {
    return this.#statements.get("scheduleList").all({}).map(rowToSchedule);
  }

  async scheduleGet({ name }: { name: string }): Promise<Schedule | null> {
    const row = this.#statements.get("scheduleGet").get({ name });
    return row === undefined ? null : rowToSchedule(row);
  }

  async scheduleDelete({ name }: { name: string }): Promise<boolean> {
    return this.#write(() => Number(this.#statements.get("scheduleDelete").run({ name }).changes) > 0);
  }

  async scheduleFire({
    name,
    tick,
    task,
    now,
  }: {
    name: string;
    tick: Date;
    task: TaskInsert;
    now: Date;
  }): Promise<TaskInsertOutcome | null> {
    return this.#write(() => {
      const advanced = this.#statements.get("scheduleAdvance").get({ name, tick: tick.getTime(), now: now.getTime() });
      return advanced === undefined ? null : insertTasks(this.#statements, this.#journal, [task], now)[0]!;
    });
  }

  // ---- nodes -------------------------------------------------------------------------------------------

  async nodeHeartbeat({ node, now }: { node: Omit<NodeRecord, "heartbeatAt">; now: Date }): Promise<void> {
    await this.#write(() =>
      this.#statements.get("nodeHeartbeat").run({
        id: node.id,
        name: node.name,
        host: node.host,
        pid: node.pid,
        version: node.version,
        roles: JSON.stringify(node.roles),
        started_at: node.startedAt.getTime(),
        now: now.getTime(),
        info: JSON.stringify(node.info),
      }),
    );
  }

  async nodeList(): Promise<NodeRecord[]> {
    return this.#statements.get("nodeList").all({}).map(rowToNode);
  }

  async nodeRemove({ id }: { id: string }): Promise<void> {
    await this.#write(() => this.#statements.get("nodeRemove").run({ id }));
  }

  async nodePrune({ before }: { before: Date }): Promise<number> {
    return this.#write(() => Number(this.#statements.get("nodePrune").run({ before: before.getTime() }).changes));
  }
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed/.test(error.message);
}

function byPriorityThenId(a: Task, b: Task): number {
  return b.priority - a.priority || a.id - b.id;
}
