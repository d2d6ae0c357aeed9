/**
 * The servers restart under a running cluster of real node processes:
 *
 * - PostgreSQL is restarted mid-run (2 nodes, 2000 tasks): the nodes ride it out (their supervisors restart the
 *   services that failed, completions are retried until the store takes them), stay up and healthy, and every task
 *   completes exactly once.
 * - RabbitMQ is stopped for 2 s mid-run (2 nodes with --amqp, 1000 tasks): nothing is lost (the store is the truth,
 *   the backstop poll covers the lost wake-ups), the buses reconnect, and cross-node stop works again afterwards.
 *
 * The servers are always restored when a test ends. A restart would break other test files using the server at the
 * same moment, so each first waits (bounded, 60 s) until no other session or connection is open on it.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import {
  allEvents,
  allTasks,
  amqpConnections,
  Cluster,
  countBy,
  eventually,
  foreignSessions,
  pause,
  postgresVersion,
  queueCounts,
  run,
  sideEffects,
  type NodeProcess,
} from "./harness.ts";
import { postgresAvailable } from "../support/services.ts";
import { postgresUrl } from "../support/postgres.ts";
import type { Task } from "../../src/index.ts";

const STOP_LIMIT_MS = 1000;

type Work = { type: string; data: { ms: number }; maxAttempts: number };

function work(count: number, minMs: number, maxMs: number): Work[] {
  return Array.from({ length: count }, () => ({
    type: "cluster.work",
    data: { ms: minMs + Math.floor(Math.random() * (maxMs - minMs + 1)) },
    maxAttempts: 20,
  }));
}

async function enqueue(node: NodeProcess, tasks: Work[]): Promise<void> {
  for (let i = 0; i < tasks.length; i += 1000) {
    const { status } = await node.api("POST", "/api/tasks/bulk", { tasks: tasks.slice(i, i + 1000) }, 30_000);
    assert.equal(status, 201);
  }
}

/**
 * Every task of cluster.work completed exactly once, and its completed attempt did its work on the node the store
 * names; work done twice only by rescued tasks. Returns figures for the report.
 */
async function checkExactlyOnce(cluster: Cluster, total: number) {
  const store = cluster.store();
  const tasks = await allTasks(store, { type: "cluster.work" });
  const events = (await allEvents(store)).filter((e) => e.queue === "work");
  assert.equal(tasks.length, total, "every task is in the store");
  assert.deepEqual(
    tasks
      .filter((task) => task.state !== "completed")
      .map((task) => ({ id: task.id, state: task.state, error: task.error?.message })),
    [],
    "every task completed",
  );
  const completions = countBy(
    events.filter((e) => e.type === "task.completed"),
    (e) => e.taskId,
  );
  assert.deepEqual(
    [...completions].filter(([, n]) => n !== 1),
    [],
    "one task.completed event per task",
  );
  assert.equal(completions.size, total);
  const rescued = events.filter((e) => e.type === "task.rescued");
  const rescuedIds = new Set(rescued.map((e) => e.taskId));
  const effects = countBy(sideEffects(cluster.sideEffects), (e) => `${e.id} ${e.attempt} ${e.nodeId}`);
  const perTask = countBy(sideEffects(cluster.sideEffects), (e) => e.id);
  const missing = tasks
    .filter((task: Task) => !effects.has(`${task.id} ${task.attempt} ${task.node}`))
    .map((task) => task.id);
  assert.deepEqual(missing, [], "every completed attempt did its work");
  const twice = [...perTask].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(
    twice.filter((id) => !rescuedIds.has(id)),
    [],
    "work done twice only by rescued tasks",
  );
  return {
    rescued: rescued.length,
    duplicates: twice.length,
    retried: events.filter((e) => e.type === "task.retrying").length,
  };
}

/** Service crashes and give-ups the nodes logged, by service. */
function crashes(nodes: NodeProcess[]): string {
  const lines = nodes.flatMap((node) =>
    ["service:crashed", "service:gave-up"].flatMap((event) =>
      node.events(event).map((l) => `${node.name}:${String(l.json.supervisor)}/${String(l.json.service)} ${event}`),
    ),
  );
  return JSON.stringify(Object.fromEntries(countBy(lines, (l) => l)));
}

// ---- PostgreSQL ------------------------------------------------------------------------------------------

async function postgresUp(): Promise<boolean> {
  try {
    return (
      await run("pg_ctlcluster", ["--skip-systemctl-redirect", postgresVersion(), "main", "status"], 10_000)
    ).includes("server is running");
  } catch {
    return false;
  }
}

async function checkpoint(): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("CHECKPOINT");
  } finally {
    await client.end();
  }
}

async function restorePostgres(): Promise<void> {
  if (await postgresUp()) return;
  await run("pg_ctlcluster", ["--skip-systemctl-redirect", postgresVersion(), "main", "start"]).catch(
    (error: unknown) => console.warn(`could not start PostgreSQL: ${String(error)}`),
  );
}

test("PostgreSQL restarts mid-run: both nodes carry on, and every task completes exactly once", {
  timeout: 180_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "pgrestart");
  if (cluster === null) return;
  t.after(restorePostgres); // runs before the cluster's own clean-up, which needs the server
  const TOTAL = 2000;
  const nodes = await cluster.startAll([
    { name: "a", concurrency: 20 },
    { name: "b", concurrency: 20 },
  ]);
  await cluster.settled();
  const store = cluster.store();
  await enqueue(nodes[0]!, work(TOTAL, 50, 150));
  await eventually(
    "400 tasks to complete",
    60_000,
    async () => ((await queueCounts(store, "work")).completed >= 400 ? true : undefined),
    25,
  );

  // Others' sessions would break: wait (bounded) until the server is ours alone.
  const quiet = await eventually(
    "other sessions on the PostgreSQL server to end",
    60_000,
    async () => ((await foreignSessions(cluster.schema)) === 0 ? true : undefined),
    250,
  ).catch(() => false);
  if (!quiet) t.diagnostic("warning: other sessions were connected to PostgreSQL when it was restarted");
  const before = await queueCounts(store, "work");
  await cluster.closeStore();
  const marks = nodes.map((node) => node.lines.length);
  const restartAt = Date.now();
  // The restart's shutdown checkpoint would also flush what every test before this one wrote since the last checkpoint
  // (thousands of files of throw-away schemas: seconds of "the database system is shutting down", longer than the
  // outage this test means): flush it first, so that the outage is the restart's own.
  await checkpoint();
  await run("pg_ctlcluster", ["--skip-systemctl-redirect", postgresVersion(), "main", "restart"], 120_000);
  const upAt = Date.now();
  assert.ok(await postgresAvailable(), "PostgreSQL answers again");

  // Both nodes come back: healthy again and every task done.
  const healthyAt = await eventually(
    "both nodes to be healthy again",
    60_000,
    async () => {
      for (const node of nodes) {
        assert.ok(node.alive, `${node.name} died: ${JSON.stringify(node.exit)}${node.tail()}`);
        if ((await node.api("GET", "/api/health")).status !== 200) return undefined;
      }
      return Date.now();
    },
    100,
  );
  const counts = await eventually(
    `all ${TOTAL} tasks to finish after the restart`,
    90_000,
    async () => {
      for (const node of nodes) assert.ok(node.alive, `${node.name} died: ${JSON.stringify(node.exit)}${node.tail()}`);
      const c = await queueCounts(cluster.store(), "work");
      return c.queued + c.running + c.scheduled === 0 ? c : undefined;
    },
    200,
  ).catch(async (error: unknown) => {
    const c = await queueCounts(cluster.store(), "work").catch(() => null);
    throw new Error(
      `${String(error)}; counts now ${JSON.stringify(c)}; crashes ${crashes(nodes)}${nodes.map((n) => n.tail()).join("")}`,
    );
  });
  const doneAt = Date.now();
  for (const node of nodes) assert.ok(node.alive, `${node.name} is still up`);
  const figures = await checkExactlyOnce(cluster, TOTAL);
  const lostConnections = nodes.map(
    (node, i) =>
      node.events("bus:lost", marks[i]).length +
      node.logs(/failed; retrying/).filter((l) => node.lines.indexOf(l) >= marks[i]!).length,
  );
  t.diagnostic(
    `PostgreSQL restart at ${before.completed}/${TOTAL} completed took ${upAt - restartAt} ms; nodes healthy ${healthyAt - upAt} ms after; all done ${doneAt - upAt} ms after (${JSON.stringify(counts)})`,
  );
  t.diagnostic(
    `after the PostgreSQL restart: rescued ${figures.rescued}, retried ${figures.retried}, tasks run twice ${figures.duplicates}; store/bus errors logged per node ${lostConnections.join("/")}; service crashes ${crashes(nodes)}`,
  );
});

// ---- RabbitMQ --------------------------------------------------------------------------------------------

async function restoreRabbit(): Promise<void> {
  await run("rabbitmqctl", ["start_app"], 60_000).catch((error: unknown) =>
    console.warn(`rabbitmqctl start_app: ${String(error)}`),
  );
  await run("rabbitmqctl", ["await_startup"], 60_000).catch(() => {});
}

/** Starts a cluster.block through `via`, finds which node runs it, stops it through the other; returns the latency. */
async function crossNodeStop(t: TestContext, nodes: NodeProcess[]): Promise<number> {
  const [a, b] = nodes as [NodeProcess, NodeProcess];
  const { body } = await a.api<{ task: Task }>("POST", "/api/tasks", { type: "cluster.block" });
  const id = body.task.id;
  const runner = await Promise.any(
    nodes.map((node) =>
      node.waitWords(`task ${id} to start`, "BLOCK", (w) => w[1] === String(id), 10_000).then(() => node),
    ),
  );
  const other = runner === a ? b : a;
  const sentAt = Date.now();
  assert.equal((await other.api("DELETE", `/api/tasks/${id}`)).status, 200);
  const aborted = await runner.waitWords(`ABORTED ${id}`, "ABORTED", (w) => w[1] === String(id), 5000);
  const latency = Number(aborted.words[3]) - sentAt;
  t.diagnostic(
    `cross-node stop after the RabbitMQ restart: DELETE on ${other.name}, signal on ${runner.name} after ${latency} ms`,
  );
  return latency;
}

test("RabbitMQ stops for 2 s mid-run: nothing is lost, the buses reconnect, cross-node stop works again", {
  timeout: 180_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "mqrestart", { amqp: true });
  if (cluster === null) return;
  t.after(restoreRabbit);
  const TOTAL = 1000;
  const nodes = await cluster.startAll([
    { name: "a", concurrency: 10 },
    { name: "b", concurrency: 10 },
  ]);
  await cluster.settled();
  const store = cluster.store();
  // ~12 s of work for 20 slots: the outage (stop_app, 2 s, start_app) ends with work left to wake up for.
  await enqueue(nodes[0]!, work(TOTAL, 150, 350));
  await eventually(
    "150 tasks to complete",
    60_000,
    async () => ((await queueCounts(store, "work")).completed >= 150 ? true : undefined),
    25,
  );

  // Others' connections would break: wait (bounded) until the broker holds only our two nodes' connections.
  const alone = await eventually(
    "other connections to RabbitMQ to close",
    60_000,
    async () => ((await amqpConnections()) <= nodes.length ? true : undefined),
    500,
  ).catch(() => false);
  if (!alone) t.diagnostic("warning: other connections were open on RabbitMQ when it was stopped");
  const marks = nodes.map((node) => node.lines.length);
  const stopAt = Date.now();
  await run("rabbitmqctl", ["stop_app"]);
  const stoppedAt = Date.now();
  await Promise.all(nodes.map((node, i) => node.waitEvent("bus:lost", 10_000, marks[i])));
  await pause(2000); // the outage
  const during = await queueCounts(store, "work");
  const startAt = Date.now();
  await run("rabbitmqctl", ["start_app"]);
  await run("rabbitmqctl", ["await_startup"]);
  const upAt = Date.now();
  // The bus may reconnect while stop_app is still closing the broker and lose its connection again: wait for a
  // reconnection after the broker is up.
  const reconnected = await Promise.all(
    nodes.map((node) =>
      node
        .until(
          "its bus to reconnect after the restart",
          () =>
            node
              .logs()
              .filter(
                (l) =>
                  (l.json.event === "bus:connected" || l.json.event === "bus:lost") &&
                  (l.json.time as number) >= stoppedAt,
              )
              .at(-1),
          30_000,
        )
        .then(async function settle(line): Promise<typeof line> {
          if (line.json.event === "bus:connected" && (line.json.time as number) >= startAt) return line;
          return node.waitEvent("bus:connected", 30_000, node.lines.indexOf(line) + 1).then(settle);
        }),
    ),
  );
  const reconnectMs = reconnected.map((line) => (line.json.time as number) - startAt);
  const busTimeline = nodes
    .map(
      (node, i) =>
        `${node.name}: ` +
        node
          .logs()
          .filter(
            (l) =>
              (l.json.event === "bus:connected" || l.json.event === "bus:lost") && node.lines.indexOf(l) >= marks[i]!,
          )
          .map((l) => `${String(l.json.event)} @${(l.json.time as number) - stopAt}`)
          .join(", "),
    )
    .join("; ");

  const counts = await eventually(
    `all ${TOTAL} tasks to finish`,
    60_000,
    async () => {
      const c = await queueCounts(store, "work");
      return c.queued + c.running + c.scheduled === 0 ? c : undefined;
    },
    200,
  );
  const figures = await checkExactlyOnce(cluster, TOTAL);
  for (const node of nodes) assert.ok(node.alive, `${node.name} is still up`);
  t.diagnostic(
    `RabbitMQ stop_app took ${stoppedAt - stopAt} ms, down ${upAt - startAt + 2000} ms in all (start_app + await_startup ${upAt - startAt} ms); ` +
      `${during.completed}/${TOTAL} completed while it was down; buses reconnected ${reconnectMs.join(" / ")} ms after start_app began; ${JSON.stringify(counts)}; rescued ${figures.rescued}`,
  );
  t.diagnostic(`bus log, ms from stop_app: ${busTimeline}`);

  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) latencies.push(await crossNodeStop(t, nodes));
  for (const ms of latencies)
    assert.ok(ms < STOP_LIMIT_MS, `a stop took ${ms} ms after the RabbitMQ restart (limit ${STOP_LIMIT_MS} ms)`);
});
