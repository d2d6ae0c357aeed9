/**
 * Cross-node stop between real node processes: a task runs on node B; it is stopped through node A's HTTP API
 * (DELETE /api/tasks/:id); B's handler sees its AbortSignal fire within a second (the design's "signalled over the
 * bus within a second"), and the task ends `cancelled`. A thread-isolated handler that ignores its signal has its
 * thread terminated after the type's grace period, and B runs the next task. Once over PostgreSQL LISTEN/NOTIFY,
 * once over RabbitMQ.
 *
 * Node A has --concurrency 0: it serves HTTP and takes part in the cluster but claims nothing, so every task runs
 * on B (which has one slot, so "the next task runs" proves the spinning thread's slot was freed).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Cluster, distribution, percentile, type NodeProcess } from "./harness.ts";
import type { Task } from "../../src/index.ts";

/** The design: a stop reaches the node running the task within a second. */
const STOP_LIMIT_MS = 1000;
/** cluster.spin's graceMs (test/fixtures/cluster-handlers.ts). */
const SPIN_GRACE_MS = 1000;

type Pair = { a: NodeProcess; b: NodeProcess; cluster: Cluster };

async function pair(t: TestContext, amqp: boolean): Promise<Pair | null> {
  const cluster = await Cluster.open(t, amqp ? "stop_amqp" : "stop", { amqp });
  if (cluster === null) return null;
  const [a, b] = await cluster.startAll([
    { name: "a", concurrency: 0 },
    { name: "b", concurrency: 1 },
  ]);
  await cluster.settled();
  return { a: a!, b: b!, cluster };
}

/** Adds a task through A and waits for B to start it; returns its id. */
async function startOnB({ a, b }: Pair, type: "cluster.block" | "cluster.spin"): Promise<number> {
  const { status, body } = await a.api<{ task: Task }>("POST", "/api/tasks", { type });
  assert.equal(status, 201);
  const id = body.task.id;
  const word = type === "cluster.block" ? "BLOCK" : "SPIN";
  const started = await b.waitWords(`${type} ${id} to start on b`, word, (w) => w[1] === String(id), 10_000);
  assert.equal(started.words[0], word);
  return id;
}

/** Stops task `id` through A; returns ms from the DELETE until B's handler saw its signal fire. */
async function stopThroughA(p: Pair, id: number): Promise<number> {
  const { a, b } = p;
  const sentAt = Date.now();
  const { status, body } = await a.api<{ task: Task }>("DELETE", `/api/tasks/${id}`);
  assert.equal(status, 200);
  assert.equal(body.task.state, "cancelled", "A answers with the task cancelled");
  const aborted = await b.waitWords(`ABORTED ${id} on b`, "ABORTED", (w) => w[1] === String(id), 5000);
  assert.equal(aborted.words[2], "cancelled", "the signal's reason is cancelled");
  const latency = Number(aborted.words[3]) - sentAt;
  await b.waitEvent(
    "task:stopped",
    5000,
    0,
    (e) => e.taskId === id && e.reason === "cancelled" && e.how === "returned",
  );
  const { body: after } = await a.api<{ task: Task }>("GET", `/api/tasks/${id}`);
  assert.equal(after.task.state, "cancelled");
  assert.equal(after.task.node, b.nodeId, "it ran on B");
  assert.equal(after.task.error?.message, "cancelled by request");
  return latency;
}

async function measureStops(t: TestContext, p: Pair, tries: number, label: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < tries; i++) {
    const id = await startOnB(p, "cluster.block");
    latencies.push(await stopThroughA(p, id));
  }
  t.diagnostic(
    `cross-node stop latency (${label}, DELETE on A → signal fired on B): p50 ${percentile(latencies, 50)} ms, max ${Math.max(...latencies)} ms; ${distribution(latencies)}; all: ${latencies.join(", ")}`,
  );
  for (const ms of latencies)
    assert.ok(
      ms < STOP_LIMIT_MS,
      `a stop took ${ms} ms to reach B (limit ${STOP_LIMIT_MS} ms): ${latencies.join(", ")}`,
    );
  return latencies;
}

test("cross-node stop over LISTEN/NOTIFY: the handler on B is signalled within a second of a DELETE on A", {
  timeout: 90_000,
}, async (t) => {
  const p = await pair(t, false);
  if (p === null) return;
  await measureStops(t, p, 5, "LISTEN/NOTIFY");
});

test("cross-node stop of a thread that ignores its signal: terminated after the grace period; the next task runs on B", {
  timeout: 90_000,
}, async (t) => {
  const p = await pair(t, false);
  if (p === null) return;
  const { a, b } = p;
  const id = await startOnB(p, "cluster.spin");
  const mark = b.lines.length;
  const sentAt = Date.now();
  const { status } = await a.api("DELETE", `/api/tasks/${id}`);
  assert.equal(status, 200);
  const ended = await b.waitEvent(
    "task:stopped",
    SPIN_GRACE_MS + 5000,
    mark,
    (e) => e.taskId === id && e.how === "terminated",
  );
  const endedMs = (ended.json.time as number) - sentAt;
  t.diagnostic(`spinning thread terminated ${endedMs} ms after the DELETE on A (grace ${SPIN_GRACE_MS} ms)`);
  assert.ok(endedMs >= SPIN_GRACE_MS - 50, `terminated only after the grace period (${endedMs} ms)`);
  assert.ok(endedMs < SPIN_GRACE_MS + STOP_LIMIT_MS + 500, `terminated within grace + a second (${endedMs} ms)`);
  const { body } = await a.api<{ task: Task }>("GET", `/api/tasks/${id}`);
  assert.equal(body.task.state, "cancelled");
  assert.equal(body.task.node, b.nodeId);

  // B has one slot: the next task starts only if the terminated thread gave it back.
  const next = await startOnB(p, "cluster.block");
  await stopThroughA(p, next);
  assert.ok(b.alive && a.alive, "both nodes are still up");
});

test("cross-node stop over RabbitMQ: the handler on B is signalled within a second of a DELETE on A", {
  timeout: 90_000,
}, async (t) => {
  const p = await pair(t, true);
  if (p === null) return;
  for (const node of [p.a, p.b]) assert.match(node.logs(/listening on/)[0]!.json.msg as string, /bus RabbitMQ/);
  await measureStops(t, p, 5, "RabbitMQ");
});
