/**
 * The PostgreSQL driver against the store conformance suite (each store in a schema of its own, dropped when the
 * suite closes the store), then what only this driver has: schema names, migrations shared by concurrent
 * migrators, SKIP LOCKED claims, and its type parsing kept to its own pool.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, describe, test } from "node:test";
import pg from "pg";
import { ConfigError } from "../../core/errors.ts";
import { describeStoreConformance } from "../conformance.ts";
import type { TaskInsert } from "../store.ts";
import { PostgresStore, type PostgresStoreOptions } from "./postgres-store.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");

function taskInput(partial: Partial<TaskInsert> = {}): TaskInsert {
  return {
    queue: "default", type: "t", data: null, priority: 0, maxAttempts: 3, runAt: T0, key: null, timeoutMs: null,
    backoffMs: null, ...partial,
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

    test("refuses a schema name that is not a plain lower-case identifier, and other bad options", () => {
      for (const schema of ["", "Conveyor", "a-b", "1abc", "x\"; DROP SCHEMA public; --", "with space", "é", "a".repeat(64)]) {
        assert.throws(() => new PostgresStore({ connectionString, schema }), ConfigError, JSON.stringify(schema));
      }
      assert.throws(() => new PostgresStore({ connectionString: "" }), ConfigError);
      assert.throws(() => new PostgresStore({ connectionString, poolSize: 0 }), ConfigError);
    });

    test("migrate creates the schema and its ledger; the migrations are SQLite's, by name", async () => {
      const store = openStore("migrate");
      try {
        const names = readdirSync(new URL("../sqlite/migrations/", import.meta.url))
          .filter((file) => file.endsWith(".sql")).sort().map((file) => file.replace(/\.sql$/, ""));
        assert.deepEqual(await store.migrationStatus(), names.map((name) => ({ name, applied: false })), "nothing before migrate");
        assert.deepEqual(await store.migrate(), { applied: names });
        assert.deepEqual(await store.migrationStatus(), names.map((name) => ({ name, applied: true })));
        assert.deepEqual(await store.migrate(), { applied: [] });
      } finally {
        await store.close();
      }
    });

    test("concurrent migrators on one fresh schema apply each migration exactly once", async () => {
      const first = openStore("migrate_race");
      const others = Array.from({ length: 3 }, () => new PostgresStore({ connectionString, schema: first.schema, poolSize: 2 }));
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
        assert.deepEqual(claimed.map((t) => t.id), [second!.task.id]);
        await client.query("ROLLBACK");
        const rest = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: T0 });
        assert.deepEqual(rest.map((t) => t.id), [first!.task.id]);
      } finally {
        await client.end();
        await store.close();
      }
    });

    test("concurrent inserts of one key from many connections create exactly one task", async () => {
      const store = openStore("key_race", { poolSize: 8 });
      try {
        await store.migrate();
        const outcomes = (await Promise.all(Array.from({ length: 16 }, (_, i) =>
          store.taskInsertMany({ now: T0, tasks: [taskInput({ key: "k", data: i }), taskInput({ data: `free ${i}` })] })))).flat();
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
        // jsonb cannot hold U+0000 in a string: the whole batch fails, the counter included.
        await assert.rejects(store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput({ data: "nul \u0000 here" })] }));
        assert.equal((await store.taskList({ limit: 10, order: "asc" })).length, 1);
        assert.equal(await store.eventLastOffset(), 1);
        await store.taskInsertMany({ now: T0, tasks: [taskInput()] });
        assert.deepEqual((await store.eventList({ after: 0, limit: 10 })).map((e) => e.offset), [1, 2], "no gap after the rollback");
      } finally {
        await store.close();
      }
    });

    test("bigint ids and offsets come back as numbers, without changing pg's global int8 parsing", async () => {
      const store = openStore("int8");
      try {
        await store.migrate();
        const [outcome] = await store.taskInsertMany({ now: T0, tasks: [taskInput({ timeoutMs: 2 ** 40, backoffMs: 5 })] });
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
      await assert.rejects(store.ping());
    });
  });
}
