/**
 * Plans that cannot go stale. The driver's connections force generic plans (statements.ts, SESSION_SETTINGS),
 * and PostgreSQL makes a connection's generic plan of a statement once, at its first run, for whatever size the
 * tables had then: often empty. So every statement's plan must stay right when the tables grow.
 *
 * Here every statement that reads tasks or the event log runs once on empty tables (its plan is made then, as on
 * a fresh install), the tables grow to tens of thousands of rows, and each runs again, in a transaction rolled
 * back afterwards, while the server counts what the transaction read (pg_stat_xact_user_tables): no sequential
 * scan of tasks or the event log, and no more rows read than the statement has to touch. A claim whose plan
 * joined the other way round read every queued task for each claim: 20,000 rows for 50.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { TaskInsert } from "../store.ts";
import { PostgresStore } from "./postgres-store.ts";
import { loadStatements, SESSION_SETTINGS } from "./statements.ts";
import { taskListStatement } from "./task-list.ts";
import type { TaskListParams } from "../store.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const NOW = new Date("2030-01-01T00:00:00.000Z");
const LATER = new Date(NOW.getTime() + 3600_000);
const FAR = new Date(NOW.getTime() + 365 * 24 * 3600_000);
const QUEUED = 20_000;
const SCHEDULED = 10_000;
const FINISHED = 10_000;
const LOG_ROWS = 20_000;
const RUNNING = 50;

/** What one statement may read at most, once the tables are big; `args` are its parameters then. */
type PlanCase = { name: string; args: () => unknown[]; maxRows: number };
/** A task list (task-list.ts builds its statement from the filters given), and what it may read at most. */
type ListCase = { name: string; params: () => TaskListParams; maxRows: number };
/** The stretch of ids the runtime gives a list no index serves (runtime/task-listing.ts's SCAN_IDS). */
const STRETCH = 20_000;

function task(partial: Partial<TaskInsert> = {}): TaskInsert {
  return {
    queue: "default",
    type: "noop",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: NOW,
    key: null,
    timeoutMs: null,
    backoffMs: null,
    ...partial,
  };
}

/** How the tables look when the plans are made: a fresh install, or a quiet one whose statistics say so. */
const STARTS: Record<string, (store: PostgresStore, client: pg.Client, schema: string) => Promise<void>> = {
  "empty tables": async () => {},
  "a few rows, analysed": async (store: PostgresStore, client: pg.Client, schema: string) => {
    await store.taskInsertMany({ now: NOW, tasks: Array.from({ length: 30 }, () => task({ queue: "few" })) });
    await client.query(`ANALYZE "${schema}".tasks`);
    await client.query(`ANALYZE "${schema}".event_log`);
  },
  // As a node in its first seconds of work: a fair share of the few tasks running.
  "a few rows, some running, analysed": async (store: PostgresStore, client: pg.Client, schema: string) => {
    await store.taskInsertMany({ now: NOW, tasks: Array.from({ length: 100 }, () => task({ queue: "few" })) });
    await store.taskClaim({ queue: "few", types: ["noop"], node: "n0", limit: 3, now: NOW });
    await client.query(`ANALYZE "${schema}".tasks`);
    await client.query(`ANALYZE "${schema}".event_log`);
  },
};

if (await postgresSuite("postgres plans")) {
  for (const [start, prepare] of Object.entries(STARTS))
    describe(`postgres plans made on ${start} stay index-driven when the tables grow`, () => {
      const schema = freshSchema("plans");
      const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 2 });
      const client = new pg.Client({ connectionString: postgresUrl(), options: SESSION_SETTINGS });
      const statements = loadStatements(schema);
      /** Until the tables grow, the statements' first runs name tasks that do not exist. */
      let running: { id: number; attempt: number }[] = [{ id: 0, attempt: 1 }];
      let cancelledId = 0;
      let queuedId = 0;
      let midOffset = 0;

      const literal = (value: unknown): string => {
        if (value === null) return "NULL";
        if (typeof value === "number" || typeof value === "boolean") return String(value);
        if (value instanceof Date) return client.escapeLiteral(value.toISOString());
        if (Array.isArray(value))
          return client.escapeLiteral(
            `{${value.map((v) => (typeof v === "string" ? JSON.stringify(v) : String(v))).join(",")}}`,
          );
        return client.escapeLiteral(typeof value === "string" ? value : JSON.stringify(value));
      };
      const execute = (name: string, args: unknown[]) =>
        client.query(`EXECUTE ${name}${args.length === 0 ? "" : `(${args.map(literal).join(", ")})`}`);

      /** What this connection has read from tasks and event_log; counts not yet flushed to the server's statistics. */
      async function readsSoFar(): Promise<Map<string, { seqScans: number; rows: number }>> {
        const { rows } = await client.query(
          `SELECT relname, seq_scan, seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables
         WHERE schemaname = $1 AND relname IN ('tasks', 'event_log')`,
          [schema],
        );
        return new Map(
          rows.map((r) => [
            r.relname,
            { seqScans: Number(r.seq_scan), rows: Number(r.seq_tup_read) + Number(r.idx_tup_fetch) },
          ]),
        );
      }

      /**
       * Runs `work` in a transaction that is rolled back, and returns what it read from tasks and event_log. A
       * backend flushes its counts only between transactions, so the difference across `work` is its own.
       */
      async function readsOf(
        work: () => Promise<unknown>,
      ): Promise<Record<string, { seqScans: number; rows: number }>> {
        await client.query("BEGIN");
        try {
          const before = await readsSoFar();
          await work();
          const reads: Record<string, { seqScans: number; rows: number }> = {};
          for (const [table, now] of await readsSoFar()) {
            const was = before.get(table) ?? { seqScans: 0, rows: 0 };
            reads[table] = { seqScans: now.seqScans - was.seqScans, rows: now.rows - was.rows };
          }
          return reads;
        } finally {
          await client.query("ROLLBACK");
        }
      }

      const cases: PlanCase[] = [
        { name: "taskClaim", args: () => ["default", ["noop"], "n9", 50, NOW], maxRows: 200 },
        {
          name: "taskComplete",
          args: () => [JSON.stringify(running.map(({ id, attempt }) => [id, attempt, "default", null])), NOW, true],
          maxRows: 4 * RUNNING,
        },
        {
          name: "taskFail",
          args: () => [
            running[0]!.id,
            running[0]!.attempt,
            JSON.stringify({ name: "Error", message: "x", attempt: 1, at: NOW.toISOString() }),
            10,
            null,
            NOW,
            null,
          ],
          maxRows: 2 * RUNNING,
        },
        {
          name: "taskProgress",
          args: () => [running[0]!.id, running[0]!.attempt, JSON.stringify({ percent: 5 }), NOW],
          maxRows: 2 * RUNNING,
        },
        { name: "taskCancel", args: () => [queuedId, "stop", NOW, NOW.toISOString(), 10], maxRows: 10 },
        { name: "taskRerun", args: () => [cancelledId, NOW], maxRows: 10 },
        { name: "taskPromote", args: () => [LATER, 100], maxRows: 300 },
        { name: "taskNextRunAt", args: () => [], maxRows: 10 },
        { name: "taskStates", args: () => [running.slice(0, 5).map((r) => r.id)], maxRows: 10 },
        { name: "taskRescue", args: () => ["n9", LATER, 3, NOW, NOW.toISOString(), 10, null], maxRows: 4 * RUNNING },
        // A fenced node's abandoned tasks: each found by its id, then its row (no look at the nodes' running tasks).
        {
          name: "taskRescue",
          args: () => ["n1", LATER, 3, NOW, NOW.toISOString(), 10, running.map((r) => r.id)],
          maxRows: 2 * RUNNING,
        },
        { name: "taskRelease", args: () => ["n1", null, NOW], maxRows: 4 * RUNNING },
        { name: "taskPrune", args: () => [FAR, 0, 1000, 100], maxRows: 2500 },
        { name: "taskGet", args: () => [queuedId], maxRows: 5 },
        { name: "taskDelete", args: () => [[cancelledId], NOW], maxRows: 10 },
        { name: "taskGetActiveByKeys", args: () => [["k1", "k2"]], maxRows: 10 },
        { name: "eventLogAfter", args: () => [midOffset, 100], maxRows: 300 },
        { name: "eventLogForTask", args: () => [queuedId, 0, 100], maxRows: 20 },
        { name: "eventLogPrune", args: () => [FAR, 100], maxRows: 300 },
        { name: "taskIdRange", args: () => [], maxRows: 5 },
        { name: "taskCreatedFrom", args: () => [queuedId], maxRows: 5 },
      ];
      const page = { limit: 100, order: "desc" } as const;
      const stretch = () => ({ idMin: Math.max(1, queuedId - STRETCH + 1), idMax: queuedId });
      const lists: ListCase[] = [
        { name: "list_newest", params: () => ({ ...page }), maxRows: 110 },
        // Each running task twice: its id from the partial index, then its row by the primary key.
        { name: "list_running", params: () => ({ ...page, states: ["running"] }), maxRows: 2 * RUNNING + 10 },
        { name: "list_cancelled", params: () => ({ ...page, states: ["cancelled"] }), maxRows: 110 },
        { name: "list_by_key", params: () => ({ ...page, key: "k1" }), maxRows: 10 },
        { name: "list_queue_stretch", params: () => ({ ...page, queue: "few", ...stretch() }), maxRows: STRETCH + 10 },
        { name: "list_type_stretch", params: () => ({ ...page, type: "none", ...stretch() }), maxRows: STRETCH + 10 },
        {
          name: "list_completed_stretch",
          params: () => ({ ...page, states: ["completed"], ...stretch() }),
          maxRows: STRETCH + 10,
        },
        {
          name: "list_time_stretch",
          params: () => ({ ...page, createdAfter: FAR, ...stretch(), order: "asc" }),
          maxRows: STRETCH + 10,
        },
      ];
      const listStatement = (params: TaskListParams) => taskListStatement(schema, "plans", params);

      before(async () => {
        await store.migrate();
        await client.connect();
        // Statistics and plans must stay as the empty tables left them: an automatic ANALYZE would re-plan.
        for (const table of ["tasks", "event_log"])
          await client.query(`ALTER TABLE "${schema}".${table} SET (autovacuum_enabled = false)`);
        await prepare(store, client, schema);
        for (const name of new Set(cases.map((c) => c.name)))
          await client.query(`PREPARE ${name} AS ${statements.get(name)!}`);
        for (const { name, params } of lists) await client.query(`PREPARE ${name} AS ${listStatement(params()).text}`);
        // The first run of each, on empty tables, makes its generic plan; the sequencer's inner statements too.
        for (const { name, args } of cases) {
          await readsOf(() => execute(name, args()));
        }
        for (const { name, params } of lists) await readsOf(() => execute(name, listStatement(params()).values));
        await readsOf(() => client.query(`SELECT "${schema}".event_sequence(100)`));

        for (let i = 0; i < QUEUED / 1000; i++)
          await store.taskInsertMany({ now: NOW, tasks: Array.from({ length: 1000 }, () => task()) });
        for (let i = 0; i < SCHEDULED / 1000; i++)
          await store.taskInsertMany({ now: NOW, tasks: Array.from({ length: 1000 }, () => task({ runAt: FAR })) });
        await store.taskInsertMany({
          now: NOW,
          tasks: Array.from({ length: 100 }, () => task({ runAt: new Date(NOW.getTime() + 1000) })),
        });
        for (let i = 0; i < FINISHED / 1000; i++)
          await store.taskInsertMany({ now: NOW, tasks: Array.from({ length: 1000 }, () => task({ queue: "done" })) });
        await client.query(
          `UPDATE "${schema}".tasks SET state = CASE WHEN id % 2 = 0 THEN 'completed' ELSE 'cancelled' END, finished_at = $1 WHERE queue = 'done'`,
          [NOW],
        );
        cancelledId = Number(
          (await client.query(`SELECT id FROM "${schema}".tasks WHERE state = 'cancelled' LIMIT 1`)).rows[0].id,
        );
        running = (
          await store.taskClaim({ queue: "default", types: ["noop"], node: "n1", limit: RUNNING, now: NOW })
        ).map((t) => ({ id: t.id, attempt: t.attempt }));
        queuedId = Number(
          (await client.query(`SELECT id FROM "${schema}".tasks WHERE state = 'queued' ORDER BY id DESC LIMIT 1`))
            .rows[0].id,
        );
        await client.query(
          `INSERT INTO "${schema}".event_log (count, at, events) SELECT 1, $1, '[["app",0,"q",null]]' FROM generate_series(1, ${LOG_ROWS})`,
          [NOW],
        );
        while (Number((await client.query(`SELECT "${schema}".event_sequence(10000) AS n`)).rows[0].n) > 0);
        midOffset = Math.floor(
          Number((await client.query(`SELECT value FROM "${schema}".event_counter`)).rows[0].value) / 2,
        );
      });

      after(async () => {
        await client.end().catch(() => {});
        await store.close();
        await dropSchema(schema);
      });

      for (const { name, args, maxRows } of cases) {
        test(`${name} reads at most ${maxRows} rows of tasks and the event log`, async () => {
          const reads = await readsOf(() => execute(name, args()));
          for (const [table, { seqScans, rows }] of Object.entries(reads)) {
            assert.equal(seqScans, 0, `${name} scanned ${table} sequentially`);
            assert.ok(rows <= maxRows, `${name} read ${rows} rows of ${table} (at most ${maxRows} expected)`);
          }
        });
      }

      for (const { name, params, maxRows } of lists) {
        test(`the task list ${name} reads at most ${maxRows} rows of tasks`, async () => {
          const reads = await readsOf(() => execute(name, listStatement(params()).values));
          assert.equal(reads.tasks?.seqScans ?? 0, 0, `${name} scanned tasks sequentially`);
          assert.ok((reads.tasks?.rows ?? 0) <= maxRows, `${name} read ${reads.tasks?.rows} rows of tasks`);
        });
      }

      // Last: it leaves tasks behind that the other cases do not expect.
      test("the running list pays for the dead entries a burst left in the running index once, not at every read", async () => {
        // 10,000 tasks through running and out: each leaves an entry in tasks_running_node until a vacuum.
        await client.query(
          `UPDATE "${schema}".tasks SET state = 'running', node = 'n5' WHERE id IN (SELECT id FROM "${schema}".tasks WHERE state = 'queued' ORDER BY id LIMIT 10000)`,
        );
        await client.query(`UPDATE "${schema}".tasks SET state = 'completed' WHERE node = 'n5'`);
        // An entry is marked dead only once no snapshot can see its row: wait (bounded) for any transaction of
        // another session on this server that began before the burst (other suites share the server).
        const burstEnd = (await client.query("SELECT clock_timestamp() AS at")).rows[0].at as Date;
        for (let i = 0; i < 100; i++) {
          const { rows } = await client.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start < $1`,
            [burstEnd],
          );
          if (rows[0].n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const { text, values } = listStatement({ ...page, states: ["running"] });
        await client.query(`PREPARE list_running_after_burst AS ${text}`);
        /** The most index entries a scan of tasks_running_node returned in the list's plan. */
        const entriesRead = async () => {
          const { rows } = await client.query(
            `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE list_running_after_burst(${values.map(literal).join(", ")})`,
          );
          type Node = { "Index Name"?: string; "Actual Rows": number; Plans?: Node[] };
          const most = (node: Node): number =>
            Math.max(
              node["Index Name"] === "tasks_running_node" ? node["Actual Rows"] : 0,
              ...(node.Plans ?? []).map(most),
            );
          return most(rows[0]["QUERY PLAN"][0].Plan);
        };
        await entriesRead();
        const again = await entriesRead();
        assert.ok(again <= 2 * RUNNING + 10, `the second read of the running list read ${again} entries of its index`);
      });

      test("the sequencer reads only the rows it numbers", async () => {
        const pending = 2000;
        const reads = await readsOf(async () => {
          await client.query(
            `INSERT INTO "${schema}".event_log (count, at, events) SELECT 1, $1, '[["app",0,"q",null]]' FROM generate_series(1, ${pending})`,
            [NOW],
          );
          await client.query(`SELECT "${schema}".event_sequence(10000)`);
        });
        assert.equal(reads.event_log?.seqScans ?? 0, 0, "the sequencer scanned the event log sequentially");
        assert.ok(
          (reads.event_log?.rows ?? 0) <= 3 * pending,
          `the sequencer read ${reads.event_log?.rows} log rows to number ${pending}`,
        );
      });
    });
}
