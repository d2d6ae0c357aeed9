/**
 * Cron across real node processes: a schedule firing every second, created through one node's HTTP API, is
 * enqueued by the leader exactly once per tick cluster-wide; when the leader is `kill -9`ed, the new leader carries
 * on, with a gap of at most the failover time and never two tasks for one tick.
 *
 * The tick a task belongs to is read from the firing leader's log ("schedule S fired for <tick>: task N") and, for
 * every task, from the second of its createdAt (a tick fires just after it is due).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { allTasks, Cluster, countBy, eventually, queueCounts, type NodeProcess } from "./harness.ts";

const TICKS_BEFORE = 5;
const TICKS_AFTER = 5;
/** A failover of under 2 s (membership.test.ts) may cost the ticks due meanwhile: at most 2 missing seconds. */
const MAX_GAP_S = 3;

/** TICK lines of every node so far: [taskId, epochMs]. */
function ticks(nodes: NodeProcess[]): { id: number; at: number; node: string }[] {
  return nodes.flatMap((node) =>
    node.words("TICK").map(({ words }) => ({ id: Number(words[1]), at: Number(words[3]), node: words[2]! })),
  );
}

test("a schedule every second fires once per tick cluster-wide, and carries on after the leader is kill -9ed", {
  timeout: 120_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "cron");
  if (cluster === null) return;
  const nodes = await cluster.startAll(["a", "b", "c"].map((name) => ({ name, concurrency: 2 })));
  const { leader } = await cluster.settled();
  const via = nodes.find((node) => node !== leader)!;

  const { status, body } = await via.api("PUT", "/api/schedules/every-second", {
    cron: "* * * * * *",
    type: "cluster.tick",
    data: { via: via.name },
  });
  assert.equal(status, 200, JSON.stringify(body));

  await eventually(`${TICKS_BEFORE} ticks`, 20_000, async () =>
    new Set(ticks(nodes).map((x) => x.id)).size >= TICKS_BEFORE ? true : undefined,
  );
  const marks = nodes.map((node) => node.lines.length);
  const killedAt = await leader.kill9();
  const survivors = nodes.filter((node) => node !== leader);
  const taken = await Promise.any(
    survivors.map((node) =>
      node
        .waitEvent("leader:gained", 10_000, marks[nodes.indexOf(node)])
        .then((line) => ({ node, at: line.json.time as number })),
    ),
  );
  t.diagnostic(`leader ${leader.name} killed; ${taken.node.name} leads ${taken.at - killedAt} ms later`);
  await eventually(`${TICKS_AFTER} ticks fired by the new leader`, 20_000, async () => {
    const fired = taken.node
      .logs(/^schedule every-second fired for /)
      .filter((line) => (line.json.time as number) > killedAt);
    return fired.length >= TICKS_AFTER ? true : undefined;
  });

  // Stop the schedule, then let the last tasks finish.
  assert.equal((await taken.node.api("DELETE", "/api/schedules/every-second")).status, 204);
  const store = cluster.store();
  await eventually("the tick tasks to finish", 15_000, async () => {
    const counts = await queueCounts(store, "tick");
    return counts.queued + counts.running + counts.scheduled === 0 ? true : undefined;
  });

  const tasks = await allTasks(store, { type: "cluster.tick" });
  const seconds = tasks.map((task) => Math.floor(task.createdAt.getTime() / 1000));
  const dupSeconds = [...countBy(seconds, (s) => s)].filter(([, n]) => n > 1);
  assert.deepEqual(dupSeconds, [], "never two tasks created in the same second");

  // The leaders' own words: each tick fired once, each task belongs to one tick.
  const fired = survivors.concat(leader).flatMap((node) =>
    node.logs(/^schedule every-second fired for /).map((line) => {
      const match = /^schedule every-second fired for (\S+): task (\d+)$/.exec(line.json.msg as string)!;
      return { tick: match[1]!, id: Number(match[2]), node: node.name };
    }),
  );
  assert.deepEqual(
    [...countBy(fired, (f) => f.tick)].filter(([, n]) => n > 1),
    [],
    "no tick fired twice",
  );
  assert.deepEqual(
    [...countBy(fired, (f) => f.id)].filter(([, n]) => n > 1),
    [],
    "no task fired for two ticks",
  );
  const byId = new Map(tasks.map((task) => [task.id, task]));
  for (const f of fired) {
    const task = byId.get(f.id);
    assert.ok(task !== undefined, `fired task ${f.id} is in the store`);
    assert.equal(
      Math.floor(task.createdAt.getTime() / 1000),
      Math.floor(Date.parse(f.tick) / 1000),
      `task ${f.id} was created in its tick's second`,
    );
  }
  assert.ok(
    fired.length >= tasks.length - 1,
    `the leaders logged ${fired.length} of ${tasks.length} fires (a killed leader may not log its last)`,
  );

  // Gaps: one second apart, except across the failover.
  const sorted = [...seconds].sort((x, y) => x - y);
  const gaps = sorted.slice(1).map((s, i) => s - sorted[i]!);
  const killSecond = Math.floor(killedAt / 1000);
  const longGaps = sorted
    .slice(1)
    .map((s, i) => ({ from: sorted[i]!, to: s }))
    .filter(({ from, to }) => to - from > 1);
  t.diagnostic(
    `${tasks.length} tick tasks over ${sorted.at(-1)! - sorted[0]! + 1} s; gaps > 1 s: ${JSON.stringify(longGaps.map((g) => ({ ...g, killAt: killSecond })))}`,
  );
  for (const gap of longGaps) {
    assert.ok(
      gap.from <= killSecond + 1 && gap.to >= killSecond,
      `a gap ${gap.from}→${gap.to} away from the kill at ${killSecond}`,
    );
    assert.ok(gap.to - gap.from <= MAX_GAP_S, `a gap of ${gap.to - gap.from} s across the failover`);
  }
  assert.ok(Math.max(...gaps) <= MAX_GAP_S);
  assert.ok(seconds.filter((s) => s * 1000 > killedAt).length >= TICKS_AFTER, "ticks carried on after the kill");

  // Every tick task completed, exactly once; those on the killed leader may have run twice (rescued), not more.
  for (const task of tasks) assert.equal(task.state, "completed", `tick task ${task.id} is ${task.state}`);
  const ran = countBy(ticks(nodes), (x) => x.id);
  for (const task of tasks) assert.ok((ran.get(task.id) ?? 0) >= 1, `tick task ${task.id} ran`);
  // A task runs once more per rescue (stall), never more than that.
  for (const [id, n] of ran) {
    const stalls = byId.get(id)?.stalls ?? 0;
    assert.ok(n <= 1 + stalls, `tick task ${id} ran ${n} times with ${stalls} rescues`);
  }
});
