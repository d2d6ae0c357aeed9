/**
 * The SQLite driver, on node:sqlite. One file, WAL journal, synchronous=NORMAL (a power cut may lose the
 * last transactions but never corrupts; a process crash loses nothing). SQLite has a single writer, so
 * every operation is one `BEGIN IMMEDIATE` transaction and claims need no row locks. Several processes
 * on one host may share the file; they wait for each other through busy_timeout.
 *
 * node:sqlite is synchronous: each operation runs to completion before any other code in this process,
 * which is also why two calls from one process never interleave inside a transaction.
 */
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { ConflictError, type ErrorRecord } from "../../core/errors.ts";
import { MAX_ERROR_HISTORY, type Task, type TaskEvent, type TaskEventType } from "../../core/task.ts";
import type { TaskState } from "../../core/states.ts";
import { eventsAfter, type LogEntry } from "../event-log.ts";
import { assembleQueueStats } from "../queue-stats.ts";
import { readNamedStatements } from "../sql-file.ts";
import type {
  Lease,
  NodeRecord,
  QueueStats,
  RescueOutcome,
  Schedule,
  ScheduleInput,
  ScheduleTaskOptions,
  Store,
  StoreCapabilities,
  TaskCancelOutcome,
  TaskCompletion,
  TaskInsert,
  TaskInsertOutcome,
  TaskListParams,
  TaskStartOn,
} from "../store.ts";
import type { Json, TaskProgress } from "../../core/task.ts";

type Row = Record<string, SQLInputValue>;

/** Statements whose rows come back as arrays, not objects: cheaper on the hot path, mapped by position. */
const ARRAY_ROWS = new Set(["taskClaim", "taskComplete"]);

/** Keyless tasks inserted per statement (taskInsertRows), and the parameters of one. */
const INSERT_ROWS = 50;
const INSERT_ROW = `(${new Array(15).fill("?").join(", ")})`;

/** Completions per statement (taskComplete). */
const COMPLETE_ROWS = 50;

/** Tasks the pruner looks at per transaction. */
const PRUNE_WINDOW = 1000;

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);
const STATEMENTS = new Map([
  ...readNamedStatements(new URL("./queries/task.sql", import.meta.url)),
  ...readNamedStatements(new URL("./queries/other.sql", import.meta.url)),
]);

export type SqliteStoreOptions = {
  /** Path of the database file (created with its folder), or ":memory:". */
  path: string;
  /** How long to wait for another process's write lock before failing, in ms. */
  busyTimeoutMs?: number;
};

export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { driver: "sqlite", multiHost: false, notifications: false };
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(options: SqliteStoreOptions) {
    this.path = options.path;
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new DatabaseSync(options.path);
    this.#db.exec(`PRAGMA busy_timeout = ${Math.floor(options.busyTimeoutMs ?? 5000)}`);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA synchronous = NORMAL");
    this.#db.exec("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  }

  // ---- plumbing ----------------------------------------------------------------------------------------

  #sql(name: string): StatementSync {
    let statement = this.#statements.get(name);
    if (statement === undefined) {
      const text = STATEMENTS.get(name);
      if (text === undefined) throw new Error(`no SQL statement named ${name}`);
      statement = this.#db.prepare(text);
      if (ARRAY_ROWS.has(name)) statement.setReturnArrays(true);
      this.#statements.set(name, statement);
    }
    return statement;
  }

  /**
   * Runs `work` in one write transaction (BEGIN IMMEDIATE takes the write lock up front: no upgrade
   * deadlock). The events and count changes `work` records are written by one statement each just before
   * COMMIT.
   */
  #write<T>(work: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.#flushEvents();
      this.#flushCounts();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#pendingEvents = [];
      this.#pendingCount = 0;
      this.#logOffset = null;
      this.#countDeltas.clear();
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Events of the current transaction, as entries of its event-log row (see LogEntry). */
  #pendingEvents: LogEntry[] = [];
  /** How many events #pendingEvents stands for. */
  #pendingCount = 0;
  #pendingEventsAt = 0;
  /** Offset of the log row the current transaction writes; read once per transaction, when first needed. */
  #logOffset: number | null = null;

  /**
   * `' <offset>'` of the current transaction's log row, for the `:ref` of statements that record events
   * (appended to each task's event_refs). SQLite has one writer: no other transaction can take it meanwhile.
   */
  #ref(): string {
    this.#logOffset ??= Number(this.#sql("eventLogNextOffset").get({})!.offset);
    return ` ${this.#logOffset}`;
  }

  #event(type: TaskEventType, taskId: number, queue: string, data: Json, at: Date): void {
    // Every event of one operation carries the operation's `now`: one time per log row.
    if (this.#pendingCount++ === 0) this.#pendingEventsAt = at.getTime();
    // An event like the one before (a batch's task.created, a claim's task.started) joins its entry: the row
    // then holds a few bytes per task instead of a whole entry, and stays within its page.
    const last = this.#pendingEvents[this.#pendingEvents.length - 1];
    if (last !== undefined && last[0] === type && last[2] === queue && sameFlatData(last[3], data)) {
      if (typeof last[1] === "number") last[1] = [last[1], taskId];
      else last[1].push(taskId);
      return;
    }
    this.#pendingEvents.push([type, taskId, queue, data]);
  }

  #flushEvents(): void {
    if (this.#pendingCount === 0) {
      this.#logOffset = null;
      return;
    }
    this.#ref();
    const row = {
      offset: this.#logOffset,
      count: this.#pendingCount,
      at: this.#pendingEventsAt,
      events: JSON.stringify(this.#pendingEvents),
    };
    this.#pendingEvents = [];
    this.#pendingCount = 0;
    this.#logOffset = null;
    this.#sql("eventLogAppend").run(row);
  }

  /** Changes to queue_counts in the current transaction, by queue then state. */
  readonly #countDeltas = new Map<string, Map<TaskState, number>>();

  /** Records that `n` tasks of `queue` moved from state `from` (null: newly inserted) to `to` (null: deleted). */
  #count(queue: string, from: TaskState | null, to: TaskState | null, n = 1): void {
    let deltas = this.#countDeltas.get(queue);
    if (deltas === undefined) {
      deltas = new Map();
      this.#countDeltas.set(queue, deltas);
    }
    if (from !== null) deltas.set(from, (deltas.get(from) ?? 0) - n);
    if (to !== null) deltas.set(to, (deltas.get(to) ?? 0) + n);
  }

  #flushCounts(): void {
    if (this.#countDeltas.size === 0) return;
    const statement = this.#sql("queueCountsAdd");
    for (const [queue, deltas] of this.#countDeltas)
      for (const [state, delta] of deltas) if (delta !== 0) statement.run(queue, state, delta);
    this.#countDeltas.clear();
  }

  // ---- migrations --------------------------------------------------------------------------------------

  #migrationFiles(): string[] {
    return readdirSync(MIGRATIONS_DIR)
      .filter((file) => /^\d+_.+\.sql$/.test(file))
      .sort();
  }

  async migrate(): Promise<{ applied: string[] }> {
    const applied: string[] = [];
    for (const file of this.#migrationFiles()) {
      const name = file.replace(/\.sql$/, "");
      this.#write(() => {
        const done = this.#db.prepare("SELECT 1 FROM migrations WHERE name = ?").get(name);
        if (done !== undefined) return;
        this.#db.exec(readFileSync(new URL(file, MIGRATIONS_DIR), "utf8"));
        this.#db.prepare("INSERT INTO migrations (name, applied_at) VALUES (?, ?)").run(name, Date.now());
        applied.push(name);
      });
    }
    return { applied };
  }

  async migrationStatus(): Promise<{ name: string; applied: boolean }[]> {
    const done = new Set(
      this.#db
        .prepare("SELECT name FROM migrations")
        .all()
        .map((row) => String(row.name)),
    );
    return this.#migrationFiles().map((file) => {
      const name = file.replace(/\.sql$/, "");
      return { name, applied: done.has(name) };
    });
  }

  async ping(): Promise<void> {
    this.#db.prepare("SELECT count(*) FROM migrations").get();
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
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
    return this.#write(() => this.#insert(tasks, now, startOn));
  }

  /**
   * Inserts the tasks in order; an input whose key an active task (or an earlier input) holds gets that task.
   * Inputs `startOn` names, ready and in a queue that is not paused, are inserted running on its node.
   */
  #insert(inputs: TaskInsert[], now: Date, startOn?: TaskStartOn): TaskInsertOutcome[] {
    const nowMs = now.getTime();
    const ref = this.#ref();
    const starting = new Set(startOn?.indexes);
    const pausedQueues = new Map<string, boolean>();
    const isPaused = (queue: string): boolean => {
      let paused = pausedQueues.get(queue);
      if (paused === undefined) paused = this.#sql("queuePaused").get({ name: queue }) !== undefined;
      pausedQueues.set(queue, paused);
      return paused;
    };
    const states = inputs.map((input, index): TaskState => {
      const runAt = input.runAt.getTime();
      if (runAt > nowMs) return "scheduled";
      return startOn !== undefined && starting.has(index) && !isPaused(input.queue) ? "running" : "queued";
    });
    /** Appends input `index`'s parameters (taskInsert's, in order) to `into`. */
    const values = (index: number, into: SQLInputValue[]): SQLInputValue[] => {
      const input = inputs[index]!;
      const start = states[index] === "running";
      into.push(
        input.queue,
        input.type,
        JSON.stringify(input.data),
        input.priority,
        states[index]!,
        input.maxAttempts,
        input.runAt.getTime(),
        input.key,
        input.timeoutMs,
        input.backoffMs,
        nowMs,
        ref,
        start ? 1 : 0,
        start ? startOn!.node : null,
        start ? nowMs : null,
      );
      return into;
    };
    const ids = inputs.every((input) => input.key === null) ? this.#insertRows(inputs.length, values) : null;
    let lastRunAt: Date | null = null;
    let lastRunAtIso = "";
    return inputs.map((input, index) => {
      let id = ids?.[index];
      if (id === undefined) {
        const { changes, lastInsertRowid } = this.#sql("taskInsert").run(...values(index, []));
        if (changes === 0) {
          const existing = this.#sql("taskGetActiveByKey").get({ key: input.key });
          if (existing === undefined) throw new Error("insert conflicted but no active task holds the key");
          return { task: rowToTask(existing), created: false };
        }
        id = Number(lastInsertRowid);
      }
      const state = states[index]!;
      const start = state === "running";
      const task: Task = {
        id,
        queue: input.queue,
        type: input.type,
        data: input.data,
        priority: input.priority,
        state,
        attempt: start ? 1 : 0,
        maxAttempts: input.maxAttempts,
        stalls: 0,
        runAt: input.runAt,
        key: input.key,
        progress: null,
        result: null,
        error: null,
        errors: [],
        timeoutMs: input.timeoutMs,
        backoffMs: input.backoffMs,
        node: start ? startOn!.node : null,
        createdAt: now,
        startedAt: start ? now : null,
        finishedAt: null,
      };
      const created = start ? "queued" : state;
      // A batch's tasks mostly share one runAt (now): format it once.
      if (input.runAt !== lastRunAt) {
        lastRunAt = input.runAt;
        lastRunAtIso = input.runAt.toISOString();
      }
      this.#event("task.created", id, task.queue, { type: task.type, state: created, runAt: lastRunAtIso }, now);
      if (start) this.#event("task.started", id, task.queue, { attempt: 1, node: startOn!.node }, now);
      this.#count(task.queue, null, state);
      return { task, created: true };
    });
  }

  /**
   * Inserts `count` keyless tasks, whose parameters `values` appends, INSERT_ROWS at a time (taskInsertRows) and the
   * rest one by one; returns their ids in order.
   * Nothing can conflict and this transaction is the only writer, so each statement's rows get consecutive ids.
   */
  #insertRows(count: number, values: (index: number, into: SQLInputValue[]) => SQLInputValue[]): number[] {
    const ids: number[] = [];
    let next = 0;
    for (; next + INSERT_ROWS <= count; next += INSERT_ROWS) {
      const args: SQLInputValue[] = [];
      for (let index = next; index < next + INSERT_ROWS; index++) values(index, args);
      const { changes, lastInsertRowid } = this.#rowsStatement("taskInsertRows", INSERT_ROW, INSERT_ROWS).run(...args);
      if (changes !== INSERT_ROWS) throw new Error(`taskInsertRows inserted ${changes} of ${INSERT_ROWS} rows`);
      const last = Number(lastInsertRowid);
      for (let id = last - INSERT_ROWS + 1; id <= last; id++) ids.push(id);
    }
    for (; next < count; next++) ids.push(Number(this.#sql("taskInsert").run(...values(next, [])).lastInsertRowid));
    return ids;
  }

  /**
   * Statement `name` with its {{rows}} placeholder filled by `count` copies of `row` (one parenthesised parameter
   * list per task), prepared once per count.
   */
  #rowsStatement(name: string, row: string, count: number): StatementSync {
    const key = `${name}/${count}`;
    let statement = this.#statements.get(key);
    if (statement === undefined) {
      statement = this.#db.prepare(STATEMENTS.get(name)!.replace("{{rows}}", new Array(count).fill(row).join(", ")));
      if (ARRAY_ROWS.has(name)) statement.setReturnArrays(true);
      this.#statements.set(key, statement);
    }
    return statement;
  }

  async taskGet({ id }: { id: number }): Promise<Task | null> {
    const row = this.#sql("taskGet").get({ id });
    return row === undefined ? null : rowToTask(row);
  }

  async taskList(params: TaskListParams): Promise<Task[]> {
    // Built here rather than in a .sql file: the filters are optional, and only their presence varies.
    const where: string[] = [];
    const values: Row = { limit: params.limit };
    if (params.queue !== undefined) {
      where.push("queue = :queue");
      values.queue = params.queue;
    }
    if (params.type !== undefined) {
      where.push("type = :type");
      values.type = params.type;
    }
    if (params.key !== undefined) {
      where.push("key = :key");
      values.key = params.key;
    }
    if (params.states !== undefined) {
      where.push("state IN (SELECT value FROM json_each(:states))");
      values.states = JSON.stringify(params.states);
    }
    if (params.after !== undefined) {
      where.push(params.order === "asc" ? "id > :after" : "id < :after");
      values.after = params.after;
    }
    const sql = `SELECT * FROM tasks ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY id ${params.order === "asc" ? "ASC" : "DESC"} LIMIT :limit`;
    return this.#db.prepare(sql).all(values).map(rowToTask);
  }

  async taskClaim(params: { queue: string; types: string[]; node: string; limit: number; now: Date }): Promise<Task[]> {
    if (params.limit <= 0 || params.types.length === 0) return [];
    return this.#write(() => {
      const rows = this.#sql("taskClaim").all({
        queue: params.queue,
        types: JSON.stringify(params.types),
        node: params.node,
        limit: params.limit,
        now: params.now.getTime(),
        ref: this.#ref(),
      });
      const claimedAt = params.now.getTime();
      const tasks = (rows as unknown as SQLOutputValue[][])
        .map((row) => claimedToTask(row, params.node, claimedAt))
        .sort(byPriorityThenId);
      if (tasks.length > 0) this.#count(params.queue, "queued", "running", tasks.length);
      for (const task of tasks)
        this.#event("task.started", task.id, task.queue, { attempt: task.attempt, node: params.node }, params.now);
      return tasks;
    });
  }

  async taskComplete({ completions, now }: { completions: TaskCompletion[]; now: Date }): Promise<number[]> {
    if (completions.length === 0) return [];
    return this.#write(() => {
      const nowMs = now.getTime();
      const ref = this.#ref();
      const ids: number[] = [];
      const complete = (chunk: TaskCompletion[]) => {
        const args: SQLInputValue[] = [nowMs, ref];
        for (const { id, queue, attempt, result } of chunk)
          args.push(id, attempt, queue, JSON.stringify(result ?? null));
        const rows = this.#rowsStatement("taskComplete", "(?, ?, ?, ?)", chunk.length).all(...args) as unknown as [
          number,
        ][];
        const completed = rows.length === chunk.length ? null : new Set(rows.map(([id]) => id));
        for (const { id, queue, attempt } of chunk) {
          if (completed !== null && !completed.has(id)) continue;
          ids.push(id);
          this.#event("task.completed", id, queue, { attempt }, now);
          this.#count(queue, "running", "completed");
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
      const current = this.#sql("taskGetRunningAttempt").get({ id: params.id, attempt: params.attempt });
      if (current === undefined) return null;
      const history = appendError(current.errors, params.error);
      const row = this.#sql("taskFail").get({
        id: params.id,
        attempt: params.attempt,
        error: JSON.stringify(params.error),
        errors: history,
        ref: this.#ref(),
        run_at: params.retryAt?.getTime() ?? null,
        now: params.now.getTime(),
      });
      if (row === undefined) return null;
      const task = rowToTask(row);
      const data = { attempt: params.attempt, error: params.error.message };
      this.#count(task.queue, "running", task.state);
      if (params.retryAt === null) this.#event("task.failed", task.id, task.queue, data, params.now);
      else
        this.#event("task.retrying", task.id, task.queue, { ...data, runAt: params.retryAt.toISOString() }, params.now);
      return task;
    });
  }

  async taskCancel({ id, reason, now }: { id: number; reason: string; now: Date }): Promise<TaskCancelOutcome | null> {
    return this.#write(() => {
      const current = this.#sql("taskGet").get({ id });
      if (current === undefined) return null;
      const before = rowToTask(current);
      if (!isActive(before.state)) return { task: before, previousState: before.state, cancelled: false };
      const error: ErrorRecord = {
        name: "CancelledError",
        message: reason,
        attempt: before.attempt,
        at: now.toISOString(),
      };
      const row = this.#sql("taskCancel").get({
        id,
        error: JSON.stringify(error),
        errors: appendError(current.errors, error),
        now: now.getTime(),
        ref: this.#ref(),
      });
      if (row === undefined) throw new Error(`task ${id} changed inside its own transaction`);
      const task = rowToTask(row);
      this.#event("task.cancelled", id, task.queue, { previousState: before.state, reason }, now);
      this.#count(task.queue, before.state, "cancelled");
      return { task, previousState: before.state, cancelled: true };
    });
  }

  async taskRerun({ id, now }: { id: number; now: Date }): Promise<Task | null> {
    return this.#write(() => {
      const current = this.#sql("taskGet").get({ id });
      if (current === undefined) return null;
      const state = String(current.state) as TaskState;
      if (state !== "failed" && state !== "cancelled") {
        throw new ConflictError(
          "invalid_state",
          `task ${id} is ${state}; only failed or cancelled tasks can be retried`,
        );
      }
      let row: Row | undefined;
      try {
        row = this.#sql("taskRerun").get({ id, now: now.getTime(), ref: this.#ref() });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new ConflictError("duplicate_key", `another active task holds key ${String(current.key)}`);
        }
        throw error;
      }
      if (row === undefined) return null;
      const task = rowToTask(row);
      this.#event("task.rerun", id, task.queue, { previousState: state }, now);
      this.#count(task.queue, state, "queued");
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
      const row = this.#sql("taskProgress").get({ id, attempt, progress: JSON.stringify(progress) });
      if (row === undefined) return false;
      this.#event("task.progress", id, String(row.queue), { attempt, ...progress }, now);
      return true;
    });
  }

  async taskPromote({ now, limit }: { now: Date; limit: number }): Promise<{ count: number; queues: string[] }> {
    return this.#write(() => {
      const rows = this.#sql("taskPromote").all({ now: now.getTime(), limit, ref: this.#ref() });
      const queues = new Set<string>();
      for (const row of rows) {
        queues.add(String(row.queue));
        this.#count(String(row.queue), "scheduled", "queued");
        this.#event("task.promoted", Number(row.id), String(row.queue), null, now);
      }
      return { count: rows.length, queues: [...queues] };
    });
  }

  async taskNextRunAt(): Promise<Date | null> {
    const row = this.#sql("taskNextRunAt").get({});
    return row?.run_at == null ? null : new Date(Number(row.run_at));
  }

  async taskStates({ ids }: { ids: number[] }): Promise<{ id: number; state: TaskState; attempt: number }[]> {
    if (ids.length === 0) return [];
    return this.#sql("taskStates")
      .all({ ids: JSON.stringify(ids) })
      .map((row) => ({
        id: Number(row.id),
        state: String(row.state) as TaskState,
        attempt: Number(row.attempt),
      }));
  }

  async taskRescue({
    rescuer,
    deadBefore,
    maxStalls,
    now,
  }: {
    rescuer: string;
    deadBefore: Date;
    maxStalls: number;
    now: Date;
  }): Promise<RescueOutcome[]> {
    return this.#write(() => {
      const outcomes: RescueOutcome[] = [];
      for (const current of this.#sql("taskRunningOnDeadNodes").all({ rescuer, dead_before: deadBefore.getTime() })) {
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
          ref: this.#ref(),
        };
        const row = this.#sql(final ? "taskRescueFail" : "taskRescueRetry").get(params);
        if (row === undefined) continue;
        const task = rowToTask(row);
        this.#event(
          final ? "task.failed" : "task.rescued",
          task.id,
          task.queue,
          { attempt: before.attempt, node: before.node, stalls: task.stalls, error: error.message },
          now,
        );
        this.#count(task.queue, "running", task.state);
        outcomes.push({ task, outcome: final ? "failed" : "retried" });
      }
      return outcomes;
    });
  }

  async taskRelease({ node, ids, now }: { node: string; ids?: number[]; now: Date }): Promise<number[]> {
    return this.#write(() => {
      const rows = this.#sql("taskRelease").all({
        node,
        ids: ids === undefined ? null : JSON.stringify(ids),
        now: now.getTime(),
        ref: this.#ref(),
      });
      for (const row of rows) {
        this.#count(String(row.queue), "running", "queued");
        this.#event(
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
  async taskPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    const cutoff = before.getTime();
    let deleted = 0;
    let after = 0;
    let walking = true;
    while (walking && deleted < limit) {
      deleted += this.#write(() => {
        const window = this.#sql("taskPruneWindow").all({ after, size: PRUNE_WINDOW });
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
            this.#count(String(row.queue), String(row.state) as TaskState, null);
          }
        }
        if (ids.length > 0) this.#sql("taskDelete").run({ ids: JSON.stringify(ids) });
        return ids.length;
      });
    }
    return deleted;
  }

  // ---- queues ------------------------------------------------------------------------------------------

  async queueStats(): Promise<QueueStats[]> {
    return assembleQueueStats(
      this.#sql("queueCounts")
        .all({})
        .map((row) => ({ queue: String(row.queue), state: String(row.state), count: Number(row.count) })),
      this.#sql("queueList")
        .all({})
        .map((row) => ({ queue: String(row.name), paused: Number(row.paused) === 1 })),
    );
  }

  async queueSetPaused({ queue, paused, now }: { queue: string; paused: boolean; now: Date }): Promise<void> {
    this.#write(() => this.#sql("queueSetPaused").run({ name: queue, paused: paused ? 1 : 0, now: now.getTime() }));
  }

  // ---- events ------------------------------------------------------------------------------------------

  async eventList({ after, limit, taskId }: { after: number; limit: number; taskId?: number }): Promise<TaskEvent[]> {
    let rows: Row[];
    if (taskId === undefined) {
      // Each row holds at least one event, and the first may hold only events at or before `after`.
      rows = this.#sql("eventLogAfter").all({ after, limit: limit + 1 });
    } else {
      const refs = this.#sql("taskEventRefs").get({ id: taskId });
      const offsets =
        refs === undefined
          ? []
          : String(refs.event_refs)
              .split(" ")
              .filter((ref) => ref !== "")
              .map(Number);
      rows = offsets.length === 0 ? [] : this.#sql("eventLogRows").all({ offsets: JSON.stringify(offsets) });
    }
    const logRows = rows.map((row) => ({
      offset: Number(row.offset),
      at: new Date(Number(row.at)),
      entries: JSON.parse(String(row.events)) as LogEntry[],
    }));
    return eventsAfter(logRows, { after, limit, taskId });
  }

  async eventLastOffset(): Promise<number> {
    return Number(this.#sql("eventLogNextOffset").get({})!.offset) - 1;
  }

  /** Deletes up to `limit` log rows (each one transaction's events) recorded before `before`; returns how many. */
  async eventPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    return this.#write(() => Number(this.#sql("eventLogPrune").run({ before: before.getTime(), limit }).changes));
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
        this.#sql("leaseAcquire").get({ name, node, expires_at: now.getTime() + ttlMs, now: now.getTime() }) !==
        undefined,
    );
  }

  async leaseRelease({ name, node }: { name: string; node: string }): Promise<void> {
    this.#write(() => this.#sql("leaseRelease").run({ name, node }));
  }

  async leaseGet({ name }: { name: string }): Promise<Lease | null> {
    const row = this.#sql("leaseGet").get({ name });
    return row === undefined
      ? null
      : { name: String(row.name), node: String(row.node), expiresAt: new Date(Number(row.expires_at)) };
  }

  async scheduleUpsert({ schedule, now }: { schedule: ScheduleInput; now: Date }): Promise<Schedule> {
    return this.#write(() =>
      rowToSchedule(
        this.#sql("scheduleUpsert").get({
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
    return this.#sql("scheduleList").all({}).map(rowToSchedule);
  }

  async scheduleGet({ name }: { name: string }): Promise<Schedule | null> {
    const row = this.#sql("scheduleGet").get({ name });
    return row === undefined ? null : rowToSchedule(row);
  }

  async scheduleDelete({ name }: { name: string }): Promise<boolean> {
    return this.#write(() => Number(this.#sql("scheduleDelete").run({ name }).changes) > 0);
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
      const advanced = this.#sql("scheduleAdvance").get({ name, tick: tick.getTime(), now: now.getTime() });
      return advanced === undefined ? null : this.#insert([task], now)[0]!;
    });
  }

  // ---- nodes -------------------------------------------------------------------------------------------

  async nodeHeartbeat({ node, now }: { node: Omit<NodeRecord, "heartbeatAt">; now: Date }): Promise<void> {
    this.#write(() =>
      this.#sql("nodeHeartbeat").run({
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
    return this.#sql("nodeList")
      .all({})
      .map((row) => ({
        id: String(row.id),
        name: String(row.name),
        host: String(row.host),
        pid: Number(row.pid),
        version: String(row.version),
        roles: JSON.parse(String(row.roles)) as string[],
        startedAt: new Date(Number(row.started_at)),
        heartbeatAt: new Date(Number(row.heartbeat_at)),
        info: JSON.parse(String(row.info)) as Json,
      }));
  }

  async nodeRemove({ id }: { id: string }): Promise<void> {
    this.#write(() => this.#sql("nodeRemove").run({ id }));
  }

  async nodePrune({ before }: { before: Date }): Promise<number> {
    return this.#write(() => Number(this.#sql("nodePrune").run({ before: before.getTime() }).changes));
  }
}

// ---- row mapping -----------------------------------------------------------------------------------------

function parseJson<T>(value: SQLInputValue | undefined, fallback: T): T {
  return value === null || value === undefined ? fallback : (JSON.parse(String(value)) as T);
}

function dateOrNull(value: SQLInputValue | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(Number(value));
}

function numberOrNull(value: SQLInputValue | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function rowToTask(row: Row): Task {
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

/** Whether two events' data are alike: the same value, or flat objects with the same keys and primitive values. */
function sameFlatData(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (
    a === null ||
    b === null ||
    typeof a !== "object" ||
    typeof b !== "object" ||
    Array.isArray(a) ||
    Array.isArray(b)
  )
    return false;
  let keys = 0;
  for (const key in a) {
    const value = a[key];
    if (value !== b[key] || (typeof value === "object" && value !== null)) return false;
    keys++;
  }
  for (const _ in b) keys--;
  return keys === 0;
}

/** A row of taskClaim's RETURNING list (in its order) as the running task it now is. */
function claimedToTask(row: SQLOutputValue[], node: string, startedAt: number): Task {
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

function rowToSchedule(row: Row): Schedule {
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

/** The error history with `error` appended, keeping the newest MAX_ERROR_HISTORY entries (as JSON text). */
function appendError(history: SQLInputValue | undefined, error: ErrorRecord): string {
  const errors = parseJson<ErrorRecord[]>(history, []);
  errors.push(error);
  return JSON.stringify(errors.slice(-MAX_ERROR_HISTORY));
}

function isActive(state: TaskState): boolean {
  return state === "scheduled" || state === "queued" || state === "running";
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed/.test(error.message);
}

function byPriorityThenId(a: Task, b: Task): number {
  return b.priority - a.priority || a.id - b.id;
}
