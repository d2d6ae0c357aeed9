/**
 * Partitions between real node processes (docs/cluster.md, "Self-fencing"). Node A reaches a server through a TCP
 * proxy (test/support/tcp-proxy.ts) that the test freezes: bytes black-holed both ways, queries hang, as behind a
 * dead switch. Node B reaches everything directly.
 *
 * - A cut off from PostgreSQL (its store and its LISTEN/NOTIFY bus) mid-run: A fences before the dead time and stops
 *   its tasks, B rescues them and runs them; no task runs on two nodes at once beyond the documented window (the
 *   side-effect log of cluster.span has every attempt's start and end), none is lost or completed twice, and A
 *   claims again by itself once the link heals.
 * - A cut off from RabbitMQ only (the bus): A degrades to polling, not to silence — it still claims (its backstop
 *   poll), a stop made on B still reaches it (the store's backstop), it does not fence (its store is fine) — notices
 *   the silent broker by the AMQP heartbeat (src/bus/amqp-heartbeat.ts: 5 s unless the URL says otherwise, so
 *   within 10 to 15 s), and takes the bus back when the link heals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../src/index.ts";
import { amqpUrl, postgresUrl } from "../support/services.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import {
  allEvents,
  allTasks,
  Cluster,
  DEAD_AFTER_BEATS,
  eventually,
  HEARTBEAT_MS,
  type NodeProcess,
  pause,
  type Span,
  spans,
} from "./harness.ts";

const DEAD_AFTER_MS = HEARTBEAT_MS * DEAD_AFTER_BEATS;
/** The nodes' default fence margin: half a heartbeat. */
const MARGIN_MS = HEARTBEAT_MS / 2;
/**
 * The longest two nodes may run one task at once (docs/cluster.md): on one host (no clock skew) the fenced node's
 * timer lateness alone, which a busy 2-CPU machine keeps well under this.
 */
const WINDOW_MS = 100;
/** A node's backstop poll (the CLI's default). */
const POLL_MS = 1000;

async function enqueueSpans(node: NodeProcess, count: number, ms: number): Promise<number[]> {
  const tasks = Array.from({ length: count }, () => ({ type: "cluster.span", data: { ms } }));
  const { status, body } = await node.api<{ tasks: Task[] }>("POST", "/api/tasks/bulk", { tasks });
  assert.equal(status, 201);
  return body.tasks.map((task) => task.id);
}

/** Pairs of attempts of one task on two nodes that ran at once, with how long (ms). */
function overlaps(all: Span[]): { id: number; a: Span; b: Span; ms: number }[] {
  const found: { id: number; a: Span; b: Span; ms: number }[] = [];
  const byTask = Map.groupBy(all, (span) => span.id);
  for (const [id, attempts] of byTask) {
    for (const a of attempts) {
      for (const b of attempts) {
        if (a === b || a.node >= b.node) continue;
        const ms = Math.min(a.end ?? Infinity, b.end ?? Infinity) - Math.max(a.start, b.start);
        if (ms > 0) found.push({ id, a, b, ms });
      }
    }
  }
  return found;
}

test("a node cut off from PostgreSQL fences before its tasks are rescued, runs none of them beside their rescuer, and rejoins when the link heals", {
  timeout: 60_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "partition_pg");
  if (cluster === null) return;
  const url = new URL(postgresUrl());
  const proxy = await TcpProxy.start(url.hostname, Number(url.port || 5432));
  t.after(() => proxy.close());
  // B first: it leads, so the rescue comes from the side of the cut that reaches the store. B has slots to spare, so
  // that it starts A's tasks as soon as it rescues them: the closest the two could come.
  const b = await cluster.start({ name: "b", concurrency: 8 });
  const a = await cluster.start({ name: "a", concurrency: 4, databaseUrl: proxy.rewrite(postgresUrl()) });
  const { leader } = await cluster.settled();
  assert.equal(leader, b);

  // Through A: its insert starts 4 on A's idle slots, B claims the other 4.
  const first = await enqueueSpans(a, 8, 1500);
  const onA = () => spans(cluster.spans).filter((s) => s.node === "a" && s.end === null);
  const running = await eventually("A to run tasks", 10_000, async () => (onA().length >= 2 ? onA() : undefined));
  await pause(200); // the 1500 ms tasks are well under way

  const cutAt = Date.now();
  proxy.freeze();
  const fenced = await a.waitEvent("node:fenced", 5000);
  const fencedAt = fenced.at;
  const abandoned = fenced.json.tasks as number[];
  assert.ok(abandoned.length >= running.length, `A stopped the tasks it ran: ${abandoned.join(", ")}`);
  // The rescue: B (the leader) finds A dead and runs A's tasks.
  const rescued = await b.waitEvent("task:rescued", 5000, 0, (e) => abandoned.includes(e.taskId as number));
  // Long enough for B to run A's tasks while A is still cut off.
  await eventually("B to run A's abandoned tasks", 10_000, async () => {
    const all = spans(cluster.spans);
    return abandoned.every((id) => all.some((s) => s.id === id && s.node === "b")) ? true : undefined;
  });
  const healAt = Date.now();
  proxy.heal();
  const unfenced = await a.waitEvent("node:unfenced", 10_000);

  // A claims again: new tasks run on it too.
  const second = await enqueueSpans(b, 16, 200);
  await eventually("A to run tasks again after the link healed", 15_000, async () =>
    spans(cluster.spans).some((s) => s.node === "a" && s.start > unfenced.at) ? true : undefined,
  );
  const ids = [...first, ...second];
  const store = cluster.store();
  const tasks = await eventually("every task to complete", 30_000, async () => {
    const all = await allTasks(store, { type: "cluster.span" });
    return all.length === ids.length && all.every((task) => task.state === "completed") ? all : undefined;
  });

  // Nothing lost, nothing completed twice.
  assert.deepEqual(
    tasks.map((task) => task.id),
    ids.toSorted((x, y) => x - y),
  );
  const completions = (await allEvents(store)).filter((e) => e.type === "task.completed");
  assert.deepEqual(
    completions.map((e) => e.taskId).toSorted((x, y) => x - y),
    ids.toSorted((x, y) => x - y),
    "one completion per task",
  );
  const all = spans(cluster.spans);
  for (const task of tasks) {
    const result = task.result as { node: string; attempt: number };
    const span = all.find((s) => s.id === task.id && s.node === result.node && s.attempt === result.attempt);
    assert.equal(span?.how, "done", `task ${task.id}'s stored result is the attempt that finished its side effect`);
  }
  assert.deepEqual(
    all.filter((s) => s.end === null),
    [],
    "every attempt ended (A's stopped ones too)",
  );
  for (const id of abandoned) {
    const stopped = all.find((s) => s.id === id && s.node === "a" && s.how === "aborted:fenced");
    assert.ok(stopped !== undefined, `task ${id}: A's attempt stopped with reason fenced`);
  }

  // No task ran on two nodes at once beyond the window.
  const both = overlaps(all);
  const worst = Math.max(0, ...both.map((o) => o.ms));
  assert.ok(worst <= WINDOW_MS, `two nodes ran one task at once for ${worst} ms: ${JSON.stringify(both)}`);
  // How far apart they were: A's stop before B's start, for the tasks A abandoned.
  const gaps = abandoned.map((id) => {
    const stop = all.find((s) => s.id === id && s.node === "a" && s.how === "aborted:fenced")!.end!;
    const start = Math.min(...all.filter((s) => s.id === id && s.node === "b").map((s) => s.start));
    return start - stop;
  });
  assert.ok(
    a.events("service:gave-up").length === 0 && b.events("service:gave-up").length === 0,
    "no supervisor gave up",
  );
  t.diagnostic(
    `cut → A fenced ${fencedAt - cutAt} ms (silent ${String(fenced.json.silentMs)} ms; dead time ${DEAD_AFTER_MS}, margin ${MARGIN_MS}); ` +
      `first rescue on B ${rescued.at - cutAt} ms after the cut; A's stop → B's start for its ${abandoned.length} tasks: ` +
      `${Math.min(...gaps)}..${Math.max(...gaps)} ms; worst overlap ${worst} ms; heal → A claims again ${unfenced.at - healAt} ms ` +
      `(fenced ${String(unfenced.json.fencedMs)} ms, handed back ${JSON.stringify(unfenced.json.released)})`,
  );
});

test("a node cut off from RabbitMQ only degrades to polling: it still claims, a stop still reaches it, it does not fence, it notices the silent broker, and it takes the bus back", {
  timeout: 60_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "partition_bus", { amqp: true });
  if (cluster === null) return;
  const url = new URL(amqpUrl());
  const proxy = await TcpProxy.start(url.hostname, Number(url.port || 5672));
  t.after(() => proxy.close());
  // B claims nothing: every task is A's to find, and B's wake-ups are the bus A cannot hear.
  const b = await cluster.start({ name: "b", concurrency: 0 });
  const a = await cluster.start({ name: "a", concurrency: 4, amqpUrl: proxy.rewrite(amqpUrl()) });
  await cluster.settled();

  const mark = a.lines.length;
  proxy.freeze();
  const cutAt = Date.now();
  // B rings a wake-up A cannot hear: A finds the tasks by its backstop poll.
  const ids = await enqueueSpans(b, 8, 300);
  const claimed = await eventually("A to claim without the bus", 10_000, async () =>
    spans(cluster.spans).find((s) => s.node === "a" && s.start > cutAt),
  );
  // A long task on A, stopped through B: the cancel goes over the bus A cannot hear; A's backstop finds it.
  const [long] = await enqueueSpans(b, 1, 60_000);
  await eventually("the long task to run on A", 10_000, async () =>
    spans(cluster.spans).find((s) => s.id === long && s.end === null),
  );
  const stopAt = Date.now();
  assert.equal((await b.api("DELETE", `/api/tasks/${long}`)).status, 200);
  const stopped = await eventually("A to stop the task", 10_000, async () =>
    spans(cluster.spans).find((s) => s.id === long && s.end !== null),
  );
  assert.equal(stopped.how, "aborted:cancelled");
  const stopMs = stopped.end! - stopAt;
  assert.ok(stopMs < POLL_MS * 3, `the stop reached A by its backstop in ${stopMs} ms`);

  // The frozen connection stays open: only the heartbeat (two silent 5 s intervals) tells A its bus is gone.
  const lost = await a.waitEvent("bus:lost", 20_000, mark);
  const lostMs = lost.at - cutAt;
  assert.ok(lostMs >= 9_000 && lostMs < 17_000, `A noticed the silent broker ${lostMs} ms after the cut`);

  const healAt = Date.now();
  proxy.heal();
  const reconnected = await a.waitEvent("bus:connected", 15_000, 0, (e) => typeof e.downMs === "number");
  const store = cluster.store();
  await eventually("every task to complete", 30_000, async () => {
    const all = await allTasks(store, { type: "cluster.span" });
    return ids.every((id) => all.find((task) => task.id === id)?.state === "completed") ? true : undefined;
  });
  assert.deepEqual(a.events("node:fenced"), [], "A's store was fine: it did not fence");
  assert.deepEqual(a.events("service:gave-up"), [], "no supervisor gave up");
  t.diagnostic(
    `bus cut: A claimed ${claimed.start - cutAt} ms after the cut (poll ${POLL_MS} ms); a stop through B reached A in ${stopMs} ms; ` +
      `A noticed the silent broker after ${lostMs} ms; ` +
      `heal → bus back on A in ${reconnected.at - healAt} ms`,
  );
});
