/**
 * Which statements commit without waiting for their WAL flush (docs/durability.md): claims, progress and heartbeats
 * do, and nothing else that changes a task. Each statement runs in a transaction of a test connection that asks,
 * before rolling back, what `synchronous_commit` that transaction would commit with. The crash this trade allows is
 * tested with a real server restarted in `immediate` mode (test/async-commit-restart.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { PostgresStore } from "./postgres-store.ts";
import { loadStatements, SESSION_SETTINGS } from "./statements.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const NOW = new Date("2030-01-01T00:00:00.000Z");

if (await postgresSuite("postgres asynchronous commit")) {
  const schema = freshSchema("async_commit");
  const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 2 });
  const client = new pg.Client({ connectionString: postgresUrl(), options: SESSION_SETTINGS });
  const statements = loadStatements(schema);
  let running = { id: 0, attempt: 0 };

  before(async () => {
    await store.migrate();
    await client.connect();
    const task = { queue: "default", type: "noop", data: null, priority: 0, maxAttempts: 3, runAt: NOW };
    await store.taskInsertMany({
      now: NOW,
      tasks: [1, 2].map(() => ({ ...task, key: null, timeoutMs: null, backoffMs: null })),
    });
    const [claimed] = await store.taskClaim({ queue: "default", types: ["noop"], node: "n1", limit: 1, now: NOW });
    running = { id: claimed!.id, attempt: claimed!.attempt };
  });
  after(async () => {
    await client.end();
    await store.close();
    await dropSchema(schema);
  });

  /** The `synchronous_commit` the transaction that ran statement `name` would commit with. */
  async function commitModeOf(name: string, values: unknown[]): Promise<{ mode: string; rows: number }> {
    await client.query("BEGIN");
    try {
      const { rowCount } = await client.query({ text: statements.get(name)!, values });
      const { rows } = await client.query("SELECT current_setting('synchronous_commit') AS mode");
      return { mode: String(rows[0].mode), rows: rowCount ?? 0 };
    } finally {
      await client.query("ROLLBACK");
    }
  }

  test("a claim, a progress report and a heartbeat commit without waiting for the WAL flush", async () => {
    const claim = await commitModeOf("taskClaim", ["default", ["noop"], "n1", 50, NOW]);
    assert.deepEqual(claim, { mode: "off", rows: 1 }, "the claim took the one queued task, asynchronously");
    const progress = await commitModeOf("taskProgress", [running.id, running.attempt, '{"percent":5}', NOW]);
    assert.deepEqual(progress, { mode: "off", rows: 1 });
    const beat = await commitModeOf("nodeHeartbeat", ["n1", "n1", "host", 1, "0", ["worker"], NOW, NOW, "{}"]);
    assert.deepEqual(beat, { mode: "off", rows: 1 }, "the heartbeat wrote its row, asynchronously");
  });

  test("completions, failures, cancels and leases wait for the flush", async () => {
    const completion = JSON.stringify([[running.id, running.attempt, "default", null]]);
    assert.equal((await commitModeOf("taskComplete", [completion, NOW, true])).mode, "on");
    const error = JSON.stringify({ message: "boom", at: NOW.toISOString() });
    const fail = await commitModeOf("taskFail", [running.id, running.attempt, error, 10, null, NOW, null]);
    assert.deepEqual(fail, { mode: "on", rows: 1 });
    const cancel = await commitModeOf("taskCancel", [running.id, "test", NOW, NOW.toISOString(), 10]);
    assert.equal(cancel.mode, "on");
    const lease = await commitModeOf("leaseAcquire", ["leader", "n1", NOW, NOW]);
    assert.deepEqual(lease, { mode: "on", rows: 1 }, "a lease is no heartbeat: two leaders must never both hold it");
  });
}
