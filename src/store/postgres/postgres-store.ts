/**
 * The PostgreSQL driver, on `pg`, for a cluster of nodes on many hosts sharing one database. Everything lives in
 * one schema (default "conveyor"), so two installs can share a database.
 *
 * Each operation is one SQL statement from queries/*.sql, run as a named prepared statement: one round trip and
 * one implicit transaction. A statement that changes tasks keeps the counts per queue and state and appends its
 * events as one event-log row in the same statement, without offsets; a reader first runs the sequencer, which
 * numbers the committed rows that have none, after every offset given before, so the log is gap-free and never
 * numbers an event behind a reader's cursor, while writers share no row and never wait for each other (the
 * reasoning is in docs/event-log.md and queries/task.sql). Batches go in as one JSON parameter: an
 * insert of 500 tasks or a completion of 50 attempts is still one statement. Claims lock with
 * FOR UPDATE SKIP LOCKED, so claimers on any number of hosts never wait for each other.
 *
 * Times always come from the caller's `now`, never from the server's clock.
 *
 * This file holds the Store class and its operations. Beside it: statements.ts (queries/*.sql, the schema and the
 * prepared-statement names), insert.ts (taskInsertMany's paths), row-mapping.ts, migrate.ts.
 */
import pg from "pg";
import { ConfigError, ConflictError, type ErrorRecord } from "../../core/errors.ts";
import { isStoreUnavailable, StoreUnavailableError } from "../../core/store-unavailable.ts";
import { type TaskState, TRANSITIONS } from "../../core/states.ts";
import {
  type ChannelEventType,
  type Json,
  type LogEvent,
  MAX_ERROR_HISTORY,
  type Task,
  type TaskProgress,
} from "../../core/task.ts";
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
import { channelEntry, eventsAfter, type LogEntry } from "../event-log.ts";
import { assembleQueueStats } from "../queue-stats.ts";
import type { DispatchStore } from "../dispatch-store.ts";
import { PostgresDispatchStore } from "./dispatch.ts";
import { insertTasks } from "./insert.ts";
import { taskListStatement } from "./task-list.ts";
import { migrate, migrationStatus } from "./migrate.ts";
import {
  claimedToTask,
  int8AsNumber,
  jsonParam,
  rowToLease,
  rowToNode,
  rowToSchedule,
  rowToTask,
  type Row,
} from "./row-mapping.ts";
import { loadStatements, quoteSchema, SESSION_SETTINGS, statementPrefix } from "./statements.ts";
import { inTransaction } from "./transaction.ts";

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export type PostgresStoreOptions = {
  /** A libpq-style URL: postgres://user:password@host:port/database. */
  connectionString: string;
  /** The schema holding this install's tables (created by migrate). Default "conveyor". */
  schema?: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /**
   * How long a statement may go without an answer before it fails (store_unavailable) and its connection is
   * destroyed: what bounds a request when the server's connections hang, as in a partition. Default 5000 ms.
   * Migrations are exempt (an index on a large table may take longer).
   */
  queryTimeoutMs?: number;
};

/** A pool, or one client inside a transaction. */
type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

/**
 * How long to wait for a connection: a free one from the pool, or a new one to the server. Opening one takes
 * milliseconds on a healthy network; past this the server is taken to be unreachable.
 */
const CONNECT_TIMEOUT_MS = 3000;

const QUERY_TIMEOUT_MS = 5000;

/**
 * The health check's deadline, for its connection and its query alike: load balancers and orchestrators poll it and
 * want an answer, good or bad, within a second or two.
 */
const PING_TIMEOUT_MS = 1000;

/** Tasks the pruner looks at per statement. */
const PRUNE_WINDOW = 1000;

/** Log rows the sequencer numbers per call (one transaction each), so that a backlog goes in bounded steps. */
const SEQUENCE_BATCH = 10_000;

/** The states tasks_ended_badly covers. */

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { driver: "postgres", multiHost: true, notifications: true };
  readonly schema: string;
  readonly dispatch: DispatchStore;
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  /**
   * The liveness connection: the health check's and the heartbeat's own (opened on first use), so that neither
   * queues behind a busy pool. A node whose pool is saturated by its own requests is alive; a beat that waited for a
   * pooled connection made such a node fence itself (1,000 HTTP clients against one node did).
   */
  #livenessClient: Promise<pg.Client> | null = null;
  /** The last use of the liveness connection: uses take turns, as pg deprecates a query sent while one runs. */
  #livenessTurn: Promise<unknown> = Promise.resolve();
  /** The ping under way, which concurrent health checks share rather than each opening a connection. */
  #pinging: Promise<void> | null = null;
  readonly #statements: Map<string, string>;
  readonly #prefix: string;
  #closed: Promise<void> | null = null;

  constructor(options: PostgresStoreOptions) {
    if (typeof options.connectionString !== "string" || options.connectionString === "") {
      throw new ConfigError("PostgresStore: connectionString is required");
    }
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1)
      throw new ConfigError(`PostgresStore: poolSize must be a positive integer, got ${poolSize}`);
    const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    if (!Number.isInteger(queryTimeoutMs) || queryTimeoutMs < 1)
      throw new ConfigError(`PostgresStore: queryTimeoutMs must be a positive integer, got ${queryTimeoutMs}`);
    this.#connectionString = options.connectionString;
    this.schema = options.schema ?? "conveyor";
    quoteSchema(this.schema);
    this.#statements = loadStatements(this.schema);
    this.#prefix = statementPrefix(this.schema);
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: poolSize,
      types: int8AsNumber(),
      // Fail an operation when the server cannot be reached or stops answering, rather than hang on it: a query
      // past its deadline fails and its connection is destroyed (pool.query releases it with the error;
      // inTransaction does the same), so a partition does not leave the pool full of hung connections.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: queryTimeoutMs,
      keepAlive: true,
      application_name: `conveyor-store-${this.schema}`.slice(0, 63),
      // The server gives up on a statement when the client does, rather than finish work nobody waits for.
      options: `${SESSION_SETTINGS} -c statement_timeout=${queryTimeoutMs}`,
    });
    // An idle connection that dies (server restart, terminated backend) is dropped by the pool; the next query
    // opens a new one. Without a listener the pool's 'error' event would crash the process.
    this.#pool.on("error", () => {});
    // The pool listens only while a connection is idle. One checked out for a transaction whose socket fails (a
    // reset, a partition) would emit 'error' with no listener and crash the process; the statement in flight fails
    // with the error anyway, and the transaction then destroys the connection.
    this.#pool.on("connect", (client) => client.on("error", () => {}));
    this.dispatch = new PostgresDispatchStore({
      pool: this.#pool,
      schema: this.schema,
      prefix: this.#prefix,
      runTask: (name, values, client) => this.#run(name, values, client),
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------------

  /** Runs named statement `name` as a prepared statement (prepared once per connection). */
  async #run(name: string, values: unknown[], client: Queryable = this.#pool): Promise<pg.QueryResult<Row>> {
    const text = this.#statements.get(name);
    if (text === undefined) throw new Error(`no SQL statement named ${name}`);
    return client.query<Row>({ name: `${this.#prefix}.${name}`, text, values });
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, work);
  }

  // ---- migrations --------------------------------------------------------------------------------------

  async migrate(): Promise<{ applied: string[] }> {
    return { applied: await migrate(this.#pool, this.schema) };
  }

  async migrationStatus(): Promise<{ name: string; applied: boolean }[]> {
    return migrationStatus(this.#pool, this.schema);
  }

  /**
   * `SELECT 1` on a connection of its own, within PING_TIMEOUT_MS whatever the pool is doing: a pool saturated by
   * hung connections would otherwise hold the health check for its whole connection timeout. A failed ping drops
   * its connection; the next one opens another.
   */
  async ping(): Promise<void> {
    if (this.#closed !== null) throw new Error("Cannot use a pool after calling end on the pool");
    this.#pinging ??= this.#pingOnce().finally(() => (this.#pinging = null));
    return this.#pinging;
  }

  async #pingOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`PostgreSQL did not answer within ${PING_TIMEOUT_MS} ms`)),
        PING_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.#onLivenessConnection((client) => client.query("SELECT 1")), deadline]);
    } catch (error) {
      this.#dropLivenessConnection();
      throw isStoreUnavailable(error) ? error : new StoreUnavailableError(describe(error), error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `use` on the liveness connection once the use before it has settled. */
  #onLivenessConnection<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
    const turn = this.#livenessTurn.then(async () => use(await this.#livenessConnection()));
    this.#livenessTurn = turn.catch(() => {});
    return turn;
  }

  #livenessConnection(): Promise<pg.Client> {
    // A turn queued before close() must not open a connection that nothing would close.
    if (this.#closed !== null) return Promise.reject(new Error("Cannot use a pool after calling end on the pool"));
    if (this.#livenessClient === null) {
      const opening = (async () => {
        const client = new pg.Client({
          connectionString: this.#connectionString,
          connectionTimeoutMillis: PING_TIMEOUT_MS,
          query_timeout: PING_TIMEOUT_MS,
          // The heartbeat's statement runs here too, planned as on the pool's connections.
          options: SESSION_SETTINGS,
          application_name: `conveyor-health-${this.schema}`.slice(0, 63),
        });
        // A connection that dies while idle is noticed by its next use; without a listener it would crash the process.
        client.on("error", () => {});
        await client.connect();
        return client;
      })();
      this.#livenessClient = opening;
      // A connection that could not be opened is not kept: the next use tries again.
      opening.catch(() => {
        if (this.#livenessClient === opening) this.#livenessClient = null;
      });
    }
    return this.#livenessClient;
  }

  #dropLivenessConnection(): void {
    const client = this.#livenessClient;
    this.#livenessClient = null;
    // end() waits for the server's goodbye, which a hung connection never sends: the socket is destroyed instead.
    void client?.then(
      (c) => (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(),
      () => {},
    );
  }

  async close(): Promise<void> {
    this.#closed ??= (async () => {
      const ping = this.#livenessClient;
      this.#livenessClient = null;
      await Promise.all([this.#pool.end(), ping?.then((c) => c.end()).catch(() => {})]);
    })();
    return this.#closed;
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
    return tasks.length === 0 ? [] : insertTasks((name, values) => this.#run(name, values), tasks, now, startOn);
  }

  async taskGet({ id }: { id: number }): Promise<Task | null> {
    const { rows } = await this.#run("taskGet", [id]);
    return rows[0] === undefined ? null : rowToTask(rows[0]);
  }

  async taskList(params: TaskListParams): Promise<Task[]> {
    const { rows } = await this.#pool.query<Row>(taskListStatement(this.schema, this.#prefix, params));
    return rows.map(rowToTask);
  }

  async taskIdRange(): Promise<{ min: number; max: number } | null> {
    const { rows } = await this.#run("taskIdRange", []);
    const row = rows[0] as { min: string | null; max: string | null } | undefined;
    return row?.min == null || row.max == null ? null : { min: Number(row.min), max: Number(row.max) };
  }

  async taskCreatedFrom({ id }: { id: number }): Promise<{ id: number; createdAt: Date } | null> {
    const { rows } = await this.#run("taskCreatedFrom", [id]);
    const row = rows[0] as { id: string; created_at: Date } | undefined;
    return row === undefined ? null : { id: Number(row.id), createdAt: row.created_at };
  }

  async taskClaim(params: { queue: string; types: string[]; node: string; limit: number; now: Date }): Promise<Task[]> {
    if (params.limit <= 0 || params.types.length === 0) return [];
    const { rows } = await this.#run("taskClaim", [params.queue, params.types, params.node, params.limit, params.now]);
    return rows.map((row) => claimedToTask(row, params.node, params.now));
  }

  async taskComplete({ completions, now }: { completions: TaskCompletion[]; now: Date }): Promise<number[]> {
    // An attempt completes once: a repeat in the batch is dropped here, so the first result stands.
    const seen = new Set<string>();
    const unique = completions.filter(
      ({ id, attempt }) => !seen.has(`${id}:${attempt}`) && seen.add(`${id}:${attempt}`),
    );
    if (unique.length === 0) return [];
    const [{ queue, attempt }] = unique as [TaskCompletion];
    const alike = unique.every((c) => c.queue === queue && c.attempt === attempt);
    const batch = JSON.stringify(unique.map((c) => [c.id, c.attempt, c.queue, c.result ?? null]));
    const { rows } = await this.#run("taskComplete", [batch, now, alike]);
    return (rows[0]?.ids ?? []) as number[];
  }

  async taskFail(params: {
    id: number;
    attempt: number;
    error: ErrorRecord;
    retryAt: Date | null;
    now: Date;
  }): Promise<Task | null> {
    const { rows } = await this.#run("taskFail", [
      params.id,
      params.attempt,
      JSON.stringify(params.error),
      MAX_ERROR_HISTORY,
      params.retryAt,
      params.now,
      params.retryAt?.toISOString() ?? null,
    ]);
    return rows[0] === undefined ? null : rowToTask(rows[0]);
  }

  async taskCancel({ id, reason, now }: { id: number; reason: string; now: Date }): Promise<TaskCancelOutcome | null> {
    const { rows } = await this.#run("taskCancel", [id, reason, now, now.toISOString(), MAX_ERROR_HISTORY]);
    const before = rows.find((row) => row.version === "before");
    if (before === undefined) return null;
    const after = rows.find((row) => row.version === "after");
    const previousState = String(before.state) as TaskState;
    return { task: rowToTask(after ?? before), previousState, cancelled: after !== undefined };
  }

  async taskRerun({ id, now }: { id: number; now: Date }): Promise<Task | null> {
    let rows: Row[];
    try {
      ({ rows } = await this.#run("taskRerun", [id, now]));
    } catch (error) {
      if ((error as { code?: unknown }).code === "23505") {
        throw new ConflictError("duplicate_key", `another active task holds the key of task ${id}`);
      }
      throw error;
    }
    const before = rows.find((row) => row.version === "before");
    if (before === undefined) return null;
    const after = rows.find((row) => row.version === "after");
    if (after === undefined) {
      throw new ConflictError(
        "invalid_state",
        `task ${id} is ${String(before.state)}; only ${TRANSITIONS.rerun.from.join(" or ")} tasks can be retried`,
      );
    }
    return rowToTask(after);
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
    const { rows } = await this.#run("taskProgress", [id, attempt, JSON.stringify(progress), now]);
    return rows.length > 0;
  }

  async taskPromote({ now, limit }: { now: Date; limit: number }): Promise<{ count: number; queues: string[] }> {
    if (limit <= 0) return { count: 0, queues: [] };
    const { rows } = await this.#run("taskPromote", [now, limit]);
    return { count: rows.length, queues: [...new Set(rows.map((row) => String(row.queue)))] };
  }

  async taskNextRunAt(): Promise<Date | null> {
    const { rows } = await this.#run("taskNextRunAt", []);
    return (rows[0]?.run_at as Date | null | undefined) ?? null;
  }

  async taskStates({
    ids,
  }: {
    ids: number[];
  }): Promise<{ id: number; state: TaskState; attempt: number; type: string }[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.#run("taskStates", [ids]);
    return rows.map((row) => ({
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
    const { rows } = await this.#run("taskRescue", [
      rescuer,
      deadBefore,
      maxStalls,
      now,
      now.toISOString(),
      MAX_ERROR_HISTORY,
      abandoned ?? null,
    ]);
    return rows.map((row) => {
      const task = rowToTask(row);
      return { task, outcome: task.state === "failed" ? "failed" : "retried" };
    });
  }

  async taskRelease({ node, ids, now }: { node: string; ids?: number[]; now: Date }): Promise<number[]> {
    if (ids !== undefined && ids.length === 0) return [];
    const { rows } = await this.#run("taskRelease", [node, ids ?? null, now]);
    return rows.map((row) => Number(row.id));
  }

  /**
   * Walks tasks in id order, a window at a time (one statement each), deleting those finished before `before`.
   * Ids grow with createdAt, and a task finishes after it is created, so the walk ends at the first task created
   * at or after `before`: what lies beyond cannot qualify. Tasks it passes over (still active, or finished later)
   * are few, and are looked at again by the next call.
   */
  async taskDelete({ ids, now }: { ids: number[]; now: Date }): Promise<number[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.#run("taskDelete", [ids, now]);
    return rows.map((row) => Number(row.id));
  }

  async taskPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    let deleted = 0;
    let after = 0;
    while (deleted < limit) {
      const { rows } = await this.#run("taskPrune", [before, after, PRUNE_WINDOW, limit - deleted]);
      deleted += Number(rows[0]!.deleted);
      if (rows[0]!.next === null) break;
      after = Number(rows[0]!.next);
    }
    return deleted;
  }

  // ---- queues ------------------------------------------------------------------------------------------

  async queueStats(): Promise<QueueStats[]> {
    const [counts, queues] = await Promise.all([this.#run("queueCounts", []), this.#run("queueList", [])]);
    return assembleQueueStats(
      counts.rows.map((row) => ({ queue: String(row.queue), state: String(row.state), count: Number(row.count) })),
      queues.rows.map((row) => ({
        queue: String(row.name),
        paused: row.paused === true,
        concurrency: row.concurrency === null ? null : Number(row.concurrency),
      })),
    );
  }

  async queueSetPaused({ queue, paused, now }: { queue: string; paused: boolean; now: Date }): Promise<void> {
    await this.#run("queueSetPaused", [queue, paused, now]);
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
    await this.#run("queueSetConcurrency", [queue, concurrency, now]);
  }

  async statsAppend({ bucket }: { bucket: TaskStatsBucket }): Promise<void> {
    const { at, node, completed, failed, retried, run, wait } = bucket;
    await this.#run("statsAppend", [at, node, completed, failed, retried, JSON.stringify(run), JSON.stringify(wait)]);
  }

  async statsList({ since }: { since: Date }): Promise<TaskStatsBucket[]> {
    const { rows } = await this.#run("statsList", [since]);
    return rows.map((row) => ({
      at: row.at as Date,
      node: String(row.node),
      completed: Number(row.completed),
      failed: Number(row.failed),
      retried: Number(row.retried),
      run: row.run as number[],
      wait: row.wait as number[],
    }));
  }

  async statsPrune({ before }: { before: Date }): Promise<number> {
    return (await this.#run("statsPrune", [before])).rowCount ?? 0;
  }

  // ---- events ------------------------------------------------------------------------------------------

  /**
   * Runs the sequencer (event_sequence(), docs/event-log.md) until every log row committed before
   * this call has offsets, so that a read that follows lists every event committed before it: an operation's
   * events are there once it has returned. Rows of transactions still open are not waited for: they are numbered
   * by a later call, after these.
   */
  async #sequence(): Promise<void> {
    let sequenced: number;
    do {
      sequenced = Number((await this.#run("eventSequence", [SEQUENCE_BATCH])).rows[0]!.sequenced);
    } while (sequenced === SEQUENCE_BATCH);
  }

  /**
   * A reader behind the sequencer gets a full page from rows that have their offsets already, and needs no
   * sequencer: offsets are given in ranges above every one given before, so the numbered rows after `after` are
   * the start of the log from there, whatever is still waiting. Only a page that comes back short (the reader has
   * caught up) runs the sequencer and reads again. Under a burst of writes this keeps a lagging reader (a node's
   * event feed, a live subscription catching up) off the sequencer's lock, which every caught-up reader queues
   * for, and lets it catch up at the speed of plain reads.
   */
  async eventList({ after, limit, taskId }: { after: number; limit: number; taskId?: number }): Promise<LogEvent[]> {
    if (limit <= 0) return [];
    const numbered = await this.#eventPage(after, limit, taskId);
    if (numbered.length === limit) return numbered;
    await this.#sequence();
    return this.#eventPage(after, limit, taskId);
  }

  async #eventPage(after: number, limit: number, taskId: number | undefined): Promise<LogEvent[]> {
    const { rows } =
      taskId === undefined
        ? await this.#run("eventLogAfter", [after, limit])
        : await this.#run("eventLogForTask", [taskId, after, limit]);
    const logRows = rows.map((row) => ({
      offset: Number(row.offset),
      at: row.at as Date,
      entries: row.events as LogEntry[],
    }));
    return eventsAfter(logRows, { after, limit, taskId });
  }

  async eventLastOffset(): Promise<number> {
    await this.#sequence();
    const { rows } = await this.#run("eventLastOffset", []);
    return Number(rows[0]?.offset ?? 0);
  }

  async eventLogInfo(): Promise<{ epoch: string; oldestOffset: number; lastOffset: number }> {
    const lastOffset = await this.eventLastOffset();
    const [epoch, oldest] = await Promise.all([this.#run("eventLogEpoch", []), this.#run("eventLogOldestOffset", [])]);
    const first = oldest.rows[0];
    return {
      epoch: String(epoch.rows[0]!.epoch),
      oldestOffset: first === undefined ? lastOffset + 1 : Number(first.offset),
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
    const entries = events.map(({ type, channel, data }) => channelEntry(type, channel, data));
    await this.#run("eventAppend", [JSON.stringify(entries), entries.length, now]);
  }

  /**
   * Deletes up to `limit` log rows (each one statement's events) recorded before `before`; returns how many. Only
   * rows with offsets go, so it sequences first: a log nobody reads is still pruned.
   */
  async eventPrune({ before, limit }: { before: Date; limit: number }): Promise<number> {
    if (limit <= 0) return 0;
    await this.#sequence();
    return (await this.#run("eventLogPrune", [before, limit])).rowCount ?? 0;
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
    const { rows } = await this.#run("leaseAcquire", [name, node, new Date(now.getTime() + ttlMs), now]);
    return rows.length > 0;
  }

  async leaseRelease({ name, node }: { name: string; node: string }): Promise<void> {
    await this.#run("leaseRelease", [name, node]);
  }

  async leaseGet({ name }: { name: string }): Promise<Lease | null> {
    const { rows } = await this.#run("leaseGet", [name]);
    return rows[0] === undefined ? null : rowToLease(rows[0]);
  }

  async scheduleUpsert({ schedule, now }: { schedule: ScheduleInput; now: Date }): Promise<Schedule> {
    const { rows } = await this.#run("scheduleUpsert", [
      schedule.name,
      schedule.cron,
      schedule.timezone,
      schedule.type,
      jsonParam(schedule.data),
      JSON.stringify(schedule.options ?? {}),
      schedule.enabled,
      now,
    ]);
    return rowToSchedule(rows[0]!);
  }

  async scheduleList(): Promise<Schedule[]> {
    return (await this.#run("scheduleList", [])).rows.map(rowToSchedule);
  }

  async scheduleGet({ name }: { name: string }): Promise<Schedule | null> {
    const { rows } = await this.#run("scheduleGet", [name]);
    return rows[0] === undefined ? null : rowToSchedule(rows[0]);
  }

  async scheduleDelete({ name }: { name: string }): Promise<boolean> {
    return ((await this.#run("scheduleDelete", [name])).rowCount ?? 0) > 0;
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
    // The tick and its task commit together.
    return this.#transaction(async (client) => {
      const advanced = await this.#run("scheduleAdvance", [name, tick, now], client);
      if (advanced.rows.length === 0) return null;
      const [outcome] = await insertTasks((statement, values) => this.#run(statement, values, client), [task], now);
      return outcome ?? null;
    });
  }

  // ---- nodes -------------------------------------------------------------------------------------------

  /** On the liveness connection, never behind the pool (see #livenessClient); a failed beat drops that connection. */
  async nodeHeartbeat({ node, now }: { node: Omit<NodeRecord, "heartbeatAt">; now: Date }): Promise<void> {
    const values = [
      node.id,
      node.name,
      node.host,
      node.pid,
      node.version,
      node.roles,
      node.startedAt,
      now,
      jsonParam(node.info),
    ];
    try {
      await this.#onLivenessConnection((client) => this.#run("nodeHeartbeat", values, client));
    } catch (error) {
      this.#dropLivenessConnection();
      throw error;
    }
  }

  async nodeList(): Promise<NodeRecord[]> {
    return (await this.#run("nodeList", [])).rows.map(rowToNode);
  }

  async nodeRemove({ id }: { id: string }): Promise<void> {
    await this.#run("nodeRemove", [id]);
  }

  async nodePrune({ before }: { before: Date }): Promise<number> {
    return (await this.#run("nodePrune", [before])).rowCount ?? 0;
  }
}
