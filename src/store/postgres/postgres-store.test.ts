/**
 * The PostgreSQL driver against the store conformance suite (each store in a schema of its own, dropped when the
 * suite closes the store), then what only this driver has: schema names, migrations shared by concurrent
 * migrators, SKIP LOCKED claims, its type parsing kept to its own pool, and its upgrades of schemas written by
 * earlier versions.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, describe, test } from "node:test";
import pg from "pg";
import { TcpProxy } from "../../../test/support/tcp-proxy.ts";
import { ConfigError } from "../../core/errors.ts";
import { describeStoreConformance } from "../conformance/index.ts";
import type { TaskInsert } from "../store.ts";
import { migrations } from "./migrate.ts";
import { PostgresStore, type PostgresStoreOptions } from "./postgres-store.ts";
import { quoteSchema, withSchema } from "./statements.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");

function taskInput(partial: Partial<TaskInsert> = {}): TaskInsert {
  return {
    queue: "default",
    type: "t",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: T0,
    key: null,
    timeoutMs: null,
    backoffMs: null,
    ...partial,
  };
}

if (await postgresSuite("postgres store")) {
  const connectionString = postgresUrl();
  /** Schemas not dropped yet; whatever a failed test leaves is dropped at the end. */
  const schemas = new Set<string>();
  after(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  /** A store in a fresh schema whose close() also drops the schema, so a run holds only a few at a time. */
  function openStore(prefix: string, options: Partial<PostgresStoreOptions> = {}): PostgresStore {
    const schema = freshSchema(prefix);
    schemas.add(schema);
    const store = new PostgresStore({ connectionString, schema, poolSize: 4, ...options });
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      await dropSchema(schema);
      schemas.delete(schema);
    };
    return store;
  }

  describeStoreConformance("postgres", async () => {
    const store = openStore("conformance");
    await store.migrate();
    return store;
  });

  describe("postgres store: driver specifics", () => {
    test("declares a multi-host store with notifications", async () => {
      const store = openStore("caps");
      try {
        assert.deepEqual(store.capabilities, { driver: "postgres", multiHost: true, notifications: true });
      } finally {
        await store.close();
      }
    });

    test("a heartbeat lands while every pooled connection waits: it has a connection of its own", async () => {
      const store = openStore("beat", { poolSize: 1 });
      const locker = new pg.Client({ connectionString });
      try {
        await store.migrate();
        await locker.connect();
        await locker.query("BEGIN");
        await locker.query(`LOCK TABLE ${quoteSchema(store.schema)}.tasks IN ACCESS EXCLUSIVE MODE`);
        // The pool's one connection waits on the lock until the locker lets go.
        let readDone = false;
        const read = store.taskGet({ id: 1 }).finally(() => (readDone = true));
        const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`;
        while ((await locker.query(waiting, [`%${store.schema}%`])).rows[0].n === 0)
          await new Promise((resolve) => setImmediate(resolve));
        const node = { id: "n1", name: "n1", host: "h", pid: 1, version: "0", roles: ["worker"], info: {} };
        const now = new Date("2030-01-01T00:00:00.000Z");
        await store.nodeHeartbeat({ node: { ...node, startedAt: now }, now });
        assert.equal(readDone, false, "the pooled read was still waiting when the beat landed");
        const { rows } = await locker.query(`SELECT heartbeat_at FROM ${quoteSchema(store.schema)}.nodes`);
        assert.deepEqual(
          rows.map((row) => row.heartbeat_at.toISOString()),
          [now.toISOString()],
        );
        await locker.query("ROLLBACK");
        assert.equal(await read, null);
      } finally {
        await locker.end();
        await store.close();
      }
    });

    test("a connection reset while checked out for a transaction fails that transaction, not the process", async () => {
      // pg-pool listens for errors on idle connections only: a checked-out one whose socket fails emits 'error' with
      // no listener, which crashed a node cut off from PostgreSQL (a CI run of the partition test).
      const proxy = await TcpProxy.start(
        new URL(connectionString).hostname,
        Number(new URL(connectionString).port || 5432),
      );
      const store = openStore("checked_out", { poolSize: 1, connectionString: proxy.rewrite(connectionString) });
      const locker = new pg.Client({ connectionString });
      try {
        await store.migrate();
        await locker.connect();
        await locker.query("BEGIN");
        await locker.query(`LOCK TABLE ${quoteSchema(store.schema)}.schedules IN ACCESS EXCLUSIVE MODE`);
        const now = new Date("2030-01-01T00:00:00.000Z");
        const task = { type: "t", queue: "default", data: null, priority: 0, maxAttempts: 1, runAt: now };
        // The transaction's connection waits on the lock, checked out of the pool, until the proxy resets it.
        const fire = store.scheduleFire({ name: "s", tick: now, task: task as never, now });
        const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`;
        for (const deadline = Date.now() + 4000; ; ) {
          // Inside a transaction the statistics are a snapshot taken at their first read: clear it for each look.
          await locker.query("SELECT pg_stat_clear_snapshot()");
          if ((await locker.query(waiting, [`%${store.schema}%`])).rows[0].n > 0) break;
          assert.ok(Date.now() < deadline, "the transaction never waited on the lock");
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        proxy.drop();
        await assert.rejects(fire, /ECONNRESET/);
        proxy.heal();
        await locker.query("ROLLBACK");
        // The dead connection left the pool: the next statement runs on a new one.
        assert.equal(await store.taskGet({ id: 1 }), null);
      } finally {
        await locker.end();
        await store.close();
        await proxy.close();
      }
    });

    test("health pings and heartbeats take turns on the liveness connection: never two queries on it at once", async () => {
      // pg deprecates a query sent while one runs on the same client (and pg@9 removes it).
      const store = openStore("turns");
      const query = pg.Client.prototype.query;
      const running = new Map<object, number>();
      let most = 0;
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        const liveness = (
          this as unknown as { connectionParameters: { application_name?: string } }
        ).connectionParameters.application_name?.startsWith("conveyor-health-");
        const result = (query as (...a: unknown[]) => unknown).apply(this, args);
        if (liveness && result instanceof Promise) {
          running.set(this, (running.get(this) ?? 0) + 1);
          most = Math.max(most, running.get(this) ?? 0);
          void result.finally(() => running.set(this, (running.get(this) ?? 1) - 1)).catch(() => {});
        }
        return result;
      } as typeof query;
      try {
        await store.migrate();
        const node = { id: "n1", name: "n1", host: "h", pid: 1, version: "0", roles: ["worker"], info: {} };
        const now = new Date("2030-01-01T00:00:00.000Z");
        const uses: Promise<void>[] = [];
        for (let i = 0; i < 10; i++) {
          uses.push(store.nodeHeartbeat({ node: { ...node, startedAt: now }, now }), store.ping());
        }
        await Promise.all(uses);
        assert.equal(most, 1, "queries at once on the liveness connection");
      } finally {
        pg.Client.prototype.query = query;
        await store.close();
      }
    });

    test("refuses a schema name that is not a plain lower-case identifier, and other bad options", () => {
      for (const schema of [
        "",
        "Conveyor",
        "a-b",
        "1abc",
        'x"; DROP SCHEMA public; --',
        "with space",
        "é",
        "a".repeat(64),
      ]) {
        assert.throws(() => new PostgresStore({ connectionString, schema }), ConfigError, JSON.stringify(schema));
      }
      assert.throws(() => new PostgresStore({ connectionString: "" }), ConfigError);
      assert.throws(() => new PostgresStore({ connectionString, poolSize: 0 }), ConfigError);
    });

    test("migrate creates the schema and its ledger; the migrations are SQLite's, by name", async () => {
      const store = openStore("migrate");
      try {
        const names = readdirSync(new URL("../sqlite/migrations/", import.meta.url))
          .filter((file) => file.endsWith(".sql"))
          .sort()
          .map((file) => file.replace(/\.sql$/, ""));
        assert.deepEqual(
          await store.migrationStatus(),
          names.map((name) => ({ name, applied: false })),
          "nothing before migrate",
        );
        assert.deepEqual(await store.migrate(), { applied: names });
        assert.deepEqual(
          await store.migrationStatus(),
          names.map((name) => ({ name, applied: true })),
        );
        assert.deepEqual(await store.migrate(), { applied: [] });
      } finally {
        await store.close();
      }
    });

    test("concurrent migrators on one fresh schema apply each migration exactly once", async () => {
      const first = openStore("migrate_race");
      const others = Array.from(
        { length: 3 },
        () => new PostgresStore({ connectionString, schema: first.schema, poolSize: 2 }),
      );
      try {
        const results = await Promise.all([first, ...others].map((store) => store.migrate()));
        const applied = results.flatMap((r) => r.applied).sort();
        assert.deepEqual(applied, (await first.migrationStatus()).map((m) => m.name).sort());
        assert.ok((await first.migrationStatus()).every((m) => m.applied));
      } finally {
        await Promise.all(others.map((store) => store.close()));
        await first.close();
      }
    });

    test("two installs in one database are independent (one schema each)", async () => {
      const a = openStore("install_a");
      const b = openStore("install_b");
      try {
        await Promise.all([a.migrate(), b.migrate()]);
        await a.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput()] });
        await b.taskInsertMany({ now: T0, tasks: [taskInput()] });
        assert.equal(await a.eventLastOffset(), 2);
        assert.equal(await b.eventLastOffset(), 1);
        assert.equal((await b.taskList({ limit: 10, order: "asc" })).length, 1);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    test("a claim skips tasks another transaction has locked (SKIP LOCKED) instead of waiting", async () => {
      const store = openStore("skip_locked");
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        await store.migrate();
        const [first, second] = await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput()] });
        await client.query("BEGIN");
        await client.query(`SELECT 1 FROM "${store.schema}".tasks WHERE id = $1 FOR UPDATE`, [first!.task.id]);
        const claimed = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: T0 });
        assert.deepEqual(
          claimed.map((t) => t.id),
          [second!.task.id],
        );
        await client.query("ROLLBACK");
        const rest = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: T0 });
        assert.deepEqual(
          rest.map((t) => t.id),
          [first!.task.id],
        );
      } finally {
        await client.end();
        await store.close();
      }
    });

    test("concurrent inserts of one key from many connections create exactly one task", async () => {
      const store = openStore("key_race", { poolSize: 8 });
      try {
        await store.migrate();
        const outcomes = (
          await Promise.all(
            Array.from({ length: 16 }, (_, i) =>
              store.taskInsertMany({
                now: T0,
                tasks: [taskInput({ key: "k", data: i }), taskInput({ data: `free ${i}` })],
              }),
            ),
          )
        ).flat();
        const keyed = outcomes.filter((o) => o.task.key === "k");
        assert.equal(keyed.filter((o) => o.created).length, 1);
        assert.equal(new Set(keyed.map((o) => o.task.id)).size, 1, "every caller gets the one task");
        assert.equal(outcomes.filter((o) => o.task.key === null && o.created).length, 16);
        assert.equal((await store.taskList({ limit: 100, order: "asc" })).length, 17);
        assert.equal(await store.eventLastOffset(), 17);
      } finally {
        await store.close();
      }
    });

    test("a failed statement writes neither its tasks nor its events", async () => {
      const store = openStore("atomic");
      try {
        await store.migrate();
        await store.taskInsertMany({ now: T0, tasks: [taskInput()] });
        // jsonb cannot hold U+0000 in a string: the whole batch fails, its log row included.
        await assert.rejects(
          store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput({ data: "nul \u0000 here" })] }),
          { code: "22P05" }, // untranslatable_character: \u0000 cannot be converted to text
        );
        assert.equal((await store.taskList({ limit: 10, order: "asc" })).length, 1);
        assert.equal(await store.eventLastOffset(), 1);
        await store.taskInsertMany({ now: T0, tasks: [taskInput()] });
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10 })).map((e) => e.offset),
          [1, 2],
          "no gap after the rollback",
        );
      } finally {
        await store.close();
      }
    });

    test("bigint ids and offsets come back as numbers, without changing pg's global int8 parsing", async () => {
      const store = openStore("int8");
      try {
        await store.migrate();
        const [outcome] = await store.taskInsertMany({
          now: T0,
          tasks: [taskInput({ timeoutMs: 2 ** 40, backoffMs: 5 })],
        });
        assert.equal(typeof outcome!.task.id, "number");
        assert.equal(outcome!.task.timeoutMs, 2 ** 40);
        assert.equal(typeof (await store.eventList({ after: 0, limit: 1 }))[0]!.offset, "number");
        assert.equal(pg.types.getTypeParser(20, "text")("9007199254740993"), "9007199254740993");
      } finally {
        await store.close();
      }
    });

    test("close is idempotent, and a closed store refuses work", async () => {
      const store = openStore("close");
      await store.migrate();
      await store.close();
      await store.close();
      await assert.rejects(store.ping(), /after calling end on the pool/);
    });
  });
  describe("postgres migration 003 (lean writes) on a schema written by 001–002", () => {
    /** A store whose schema is at migration 002, with what `setup` wrote there the way an earlier Conveyor did. */
    async function storeAt002(
      prefix: string,
      setup: (sql: (text: string, values?: unknown[]) => Promise<pg.QueryResult>) => Promise<void>,
    ): Promise<PostgresStore> {
      const store = openStore(prefix);
      const schema = quoteSchema(store.schema);
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        await client.query(`CREATE SCHEMA ${schema}`);
        await client.query(
          `CREATE TABLE ${schema}.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)`,
        );
        for (const migration of migrations().filter((m) => m.name < "003")) {
          await client.query(withSchema(migration.sql, store.schema));
          await client.query(`INSERT INTO ${schema}.migrations (name, applied_at) VALUES ($1, now())`, [
            migration.name,
          ]);
        }
        await setup((text, values) => client.query(text.replaceAll("{{schema}}", schema), values));
      } finally {
        await client.end();
      }
      return store;
    }

    /** Inserts a task as 001 knew it; returns its id. */
    async function oldTask(
      sql: (text: string, values?: unknown[]) => Promise<pg.QueryResult>,
      queue: string,
      state: string,
    ): Promise<number> {
      const { rows } = await sql(
        `INSERT INTO {{schema}}.tasks (queue, type, state, attempt, max_attempts, run_at, created_at, node)
         VALUES ($1, 't', $2::text, CASE WHEN $2::text = 'running' THEN 1 ELSE 0 END, 3, $3, $3,
                 CASE WHEN $2::text = 'running' THEN 'old-node' END)
         RETURNING id`,
        [queue, state, T0],
      );
      return Number(rows[0].id);
    }

    test("keeps events, their offsets and each task's history, counts the tasks, and drops what it replaces", async () => {
      const at = (s: number) => new Date(T0.getTime() + s * 1000);
      const ids: number[] = [];
      const store = await storeAt002("upgrade", async (sql) => {
        ids.push(
          await oldTask(sql, "a", "completed"),
          await oldTask(sql, "a", "queued"),
          await oldTask(sql, "b", "running"),
        );
        ids.push(await oldTask(sql, "b", "scheduled"));
        const [one, two, three] = ids;
        const events: [string, number, string, unknown][] = [
          ["task.created", one!, "a", { x: 1 }],
          ["task.created", two!, "a", null],
          ["task.started", one!, "a", { attempt: 1 }],
          ["task.progress", one!, "a", { attempt: 1, percent: 50 }],
          ["task.completed", one!, "a", { attempt: 1 }],
          ["task.created", three!, "b", null],
          ["task.started", three!, "b", { attempt: 1 }],
        ];
        for (const [i, [type, taskId, queue, data]] of events.entries()) {
          await sql(
            `INSERT INTO {{schema}}.events ("offset", type, task_id, queue, data, at) VALUES ($1, $2, $3, $4, $5, $6)`,
            [i + 1, type, taskId, queue, JSON.stringify(data), at(i)],
          );
        }
        await sql(`UPDATE {{schema}}.event_counter SET value = $1`, [events.length]);
      });
      const [one, two, three, four] = ids;
      try {
        assert.deepEqual(await store.migrate(), {
          applied: [
            "003_lean_writes",
            "004_plans_by_id",
            "005_live_log",
            "006_dashboard",
            "007_dispatch",
            "008_sequencer_without_join",
            "009_running_ids",
          ],
        });
        const events = await store.eventList({ after: 0, limit: 100 });
        assert.deepEqual(
          events.map((e) => [e.offset, e.type, e.taskId, e.queue]),
          [
            [1, "task.created", one, "a"],
            [2, "task.created", two, "a"],
            [3, "task.started", one, "a"],
            [4, "task.progress", one, "a"],
            [5, "task.completed", one, "a"],
            [6, "task.created", three, "b"],
            [7, "task.started", three, "b"],
          ],
        );
        assert.deepEqual(
          events.map((e) => e.at),
          [0, 1, 2, 3, 4, 5, 6].map(at),
        );
        assert.deepEqual(
          events.map((e) => e.data),
          [{ x: 1 }, null, { attempt: 1 }, { attempt: 1, percent: 50 }, { attempt: 1 }, null, { attempt: 1 }],
        );
        assert.equal(await store.eventLastOffset(), 7);
        // Progress stays out of a task's own history, as it does for new events.
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 100, taskId: one! })).map((e) => e.offset),
          [1, 3, 5],
        );
        assert.deepEqual(await store.eventList({ after: 0, limit: 100, taskId: four! }), []);

        const counts = new Map((await store.queueStats()).map((q) => [q.queue, q.counts]));
        assert.deepEqual(counts.get("a"), {
          scheduled: 0,
          queued: 1,
          running: 0,
          completed: 1,
          failed: 0,
          cancelled: 0,
        });
        assert.deepEqual(counts.get("b"), {
          scheduled: 1,
          queued: 0,
          running: 1,
          completed: 0,
          failed: 0,
          cancelled: 0,
        });

        // New events continue after the old last offset, each in a log row of its own, and join the old history.
        const [claimed] = await store.taskClaim({ queue: "a", types: ["t"], node: "n", limit: 1, now: at(20) });
        assert.equal(claimed!.id, two);
        assert.deepEqual(
          await store.taskComplete({
            now: at(21),
            completions: [{ id: three!, queue: "b", attempt: 1, result: null }],
          }),
          [three],
        );
        assert.deepEqual(
          (await store.eventList({ after: 7, limit: 10 })).map((e) => [e.offset, e.type, e.taskId]),
          [
            [8, "task.started", two],
            [9, "task.completed", three],
          ],
        );
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10, taskId: two! })).map((e) => e.offset),
          [2, 8],
        );
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10, taskId: three! })).map((e) => e.offset),
          [6, 7, 9],
        );
        const after = new Map((await store.queueStats()).map((q) => [q.queue, q.counts]));
        assert.deepEqual(after.get("a"), {
          scheduled: 0,
          queued: 0,
          running: 1,
          completed: 1,
          failed: 0,
          cancelled: 0,
        });
        assert.deepEqual(after.get("b"), {
          scheduled: 1,
          queued: 0,
          running: 0,
          completed: 1,
          failed: 0,
          cancelled: 0,
        });

        const client = new pg.Client({ connectionString });
        await client.connect();
        try {
          const { rows } = await client.query(
            `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'tasks' ORDER BY indexname`,
            [store.schema],
          );
          assert.deepEqual(
            rows.map((r) => r.indexname),
            [
              "tasks_claim",
              "tasks_ended_badly",
              "tasks_key", // 006
              "tasks_key_active",
              "tasks_pkey",
              "tasks_running_node",
              "tasks_scheduled",
            ],
          );
          const events = await client.query(`SELECT to_regclass($1) AS found`, [`${quoteSchema(store.schema)}.events`]);
          assert.equal(events.rows[0].found, null, "the old events table is gone");
          const log = await client.query(
            `SELECT "offset"::int, lsn = '0/0' AS old FROM ${quoteSchema(store.schema)}.event_log ORDER BY "offset"`,
          );
          assert.deepEqual(
            log.rows.map((r) => [r.offset, r.old]),
            [1, 2, 3, 4, 5, 6, 7, 8, 9].map((o) => [o, o <= 7]),
            "old events keep their offsets, with an lsn below every new row's; new ones were sequenced after them",
          );
        } finally {
          await client.end();
        }
      } finally {
        await store.close();
      }
    });

    test("a log the pruner emptied keeps counting from its last offset", async () => {
      const store = await storeAt002("upgrade_pruned", async (sql) => {
        await oldTask(sql, "a", "queued");
        for (let offset = 1; offset <= 5; offset++) {
          await sql(
            `INSERT INTO {{schema}}.events ("offset", type, task_id, queue, at) VALUES ($1, 'task.created', 1, 'a', $2)`,
            [offset, T0],
          );
        }
        await sql(`UPDATE {{schema}}.event_counter SET value = 5`);
        await sql(`DELETE FROM {{schema}}.events`);
      });
      try {
        await store.migrate();
        assert.equal(await store.eventLastOffset(), 5);
        assert.deepEqual(await store.eventList({ after: 0, limit: 10 }), []);
        await store.taskClaim({ queue: "a", types: ["t"], node: "n", limit: 1, now: T0 });
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10 })).map((e) => e.offset),
          [6],
        );
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10, taskId: 1 })).map((e) => e.offset),
          [6],
        );
      } finally {
        await store.close();
      }
    });
  });
}
