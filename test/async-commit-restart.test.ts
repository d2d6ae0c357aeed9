/**
 * The trade of asynchronous commit (docs/durability.md): claims, progress and heartbeats commit without waiting for
 * their WAL flush, so a server crash may lose the last few claims. Here a node drains tasks on a PostgreSQL server
 * of the test's own, which is stopped in `immediate` mode (every server process killed, no checkpoint: what a power
 * cut leaves is what the WAL on disk says) while the drain runs, and started again. Asserted on the store once the
 * drain ends: every task added before the crash is there and completed, each with exactly one `task.completed`
 * event; none failed. A task may run twice (its claim lost in the crash, or its attempt stopped while the store was
 * away), which at-least-once execution allows: the count of such reruns is reported, not bounded.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { Conveyor, PostgresStore } from "../src/index.ts";
import type { LogEvent } from "../src/index.ts";
import { postgresBinaries, PrivatePostgres } from "./support/private-postgres.ts";

const TASKS = 3000;
/**
 * The crash lands as this many handlers have started, a third of the way through: in the first line of a handler,
 * just after the claim that started it committed, when the claims most likely to be lost are the newest.
 */
const CRASH_AT_START = 1000;
const CONCURRENCY = 20;

test("asynchronous claims: PostgreSQL stopped in immediate mode mid-drain loses no task and completes none twice", {
  timeout: 120_000,
}, async (t) => {
  const bin = postgresBinaries();
  if (bin === null) {
    const why = "no PostgreSQL server binaries under /usr/lib/postgresql (Debian package postgresql)";
    if (process.env.CI === "true") throw new Error(`${why}; CI=true requires them`);
    console.warn(`\n!!! ${why}: skipping the immediate-restart test. !!!\n`);
    t.skip(why);
    return;
  }
  const server = await PrivatePostgres.create(bin);
  t.after(() => server.destroy());

  const runs = new Map<number, number>();
  let started = 0;
  let crashed: () => void = () => {};
  const crashPoint = new Promise<void>((resolve) => (crashed = resolve));
  // Silent: the node logs every failed write while the server is down, as it should.
  const node = new Conveyor({ database: server.url, concurrency: CONCURRENCY, logger: pino({ level: "silent" }) });
  node.define("work", async (_data, ctx) => {
    runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
    if (++started === CRASH_AT_START) crashed();
    await new Promise((resolve) => setTimeout(resolve, 2));
  });
  t.after(() => node.stop());
  for (let added = 0; added < TASKS; added += 500) {
    await node.enqueueMany(Array.from({ length: 500 }, (_, i) => ({ type: "work", data: { n: added + i } })));
  }
  await node.start();

  await crashPoint;
  await server.crash();
  const startedAtCrash = started;
  await server.start();

  // The node finds the server again by itself (its pool reconnects; a fenced node hands its tasks back).
  const store = new PostgresStore({ connectionString: server.url });
  t.after(() => store.close());
  const deadline = Date.now() + 60_000;
  for (;;) {
    const counts = (await store.queueStats().catch(() => []))[0]?.counts;
    if (counts !== undefined && counts.completed === TASKS) break;
    assert.ok(Date.now() < deadline, `drain after the restart stalled: ${JSON.stringify(counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const tasks = await store.taskList({ limit: TASKS + 1, order: "asc" });
  assert.equal(tasks.length, TASKS, "every task added before the crash is still there");
  assert.deepEqual(
    tasks.filter((task) => task.state !== "completed").map((task) => `${task.id}:${task.state}`),
    [],
  );
  const events: LogEvent[] = [];
  for (;;) {
    const page = await store.eventList({ after: events.at(-1)?.offset ?? 0, limit: 5000 });
    events.push(...page);
    if (page.length < 5000) break;
  }
  const completions = new Map<number, number>();
  for (const event of events) {
    if (event.type === "task.completed") completions.set(event.taskId, (completions.get(event.taskId) ?? 0) + 1);
    assert.notEqual(event.type, "task.failed", `task ${event.taskId} failed`);
  }
  assert.equal(completions.size, TASKS, "each task has a task.completed event");
  assert.deepEqual(
    [...completions].filter(([, count]) => count !== 1),
    [],
    "no task completed twice",
  );
  assert.equal(runs.size, TASKS, "every task's handler ran");
  const reruns = [...runs.values()].filter((count) => count > 1).length;
  t.diagnostic(`the crash landed after ${startedAtCrash} handler starts; ${reruns} tasks ran twice`);
});
