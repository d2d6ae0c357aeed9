/**
 * Membership and leadership across real node processes on PostgreSQL: three nodes see each other alive with one
 * leader; the leader is `kill -9`ed; a survivor leads within the lease time (dead-after × heartbeat) plus a renewal
 * interval, and the dead node shows `alive: false` everywhere. And a node that is starting keeps its heartbeats on
 * time: it must not look dead to the leader (which would rescue the tasks it has just claimed and run them twice).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allEvents,
  Cluster,
  eventually,
  HEARTBEAT_MS,
  LEASE_MS,
  pause,
  queueCounts,
  withTimeout,
  type ClusterView,
} from "./harness.ts";

/** Lease 600 ms + one renewal interval 200 ms is the design's figure; allow slack for a loaded 2-CPU box. */
const FAILOVER_LIMIT_MS = 2000;

test("three nodes agree on membership and one leader; a kill -9ed leader is replaced within the lease time", {
  timeout: 90_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "membership");
  if (cluster === null) return;
  const nodes = await cluster.startAll(["a", "b", "c"].map((name) => ({ name, concurrency: 1 })));

  const { leader, views } = await cluster.settled();
  for (const view of views) {
    assert.equal(view.nodes.length, 3, "each node lists the three nodes");
    assert.deepEqual(view.nodes.map((n) => n.name).sort(), ["a", "b", "c"]);
    for (const row of view.nodes) {
      assert.equal(row.alive, true);
      assert.equal(row.leader, row.id === leader.nodeId);
      assert.equal(row.version, "0.1.0");
      assert.ok(row.info.tree !== undefined, "the row carries the node's supervision tree");
      assert.ok(row.heartbeatAgeMs < LEASE_MS, `heartbeat age ${row.heartbeatAgeMs} ms is under the dead time`);
    }
  }
  assert.equal(
    nodes.filter(
      (node) =>
        node.events("leader:gained").length > 0 &&
        node.events("leader:lost").length < node.events("leader:gained").length,
    ).length,
    1,
    "exactly one node's log says it leads now",
  );

  const survivors = nodes.filter((node) => node !== leader);
  const marks = survivors.map((node) => node.lines.length);
  const killedAt = await leader.kill9();

  // The new leader's own log line says when it took the lease; its epoch time (pino's "time") is on this host's clock.
  const taken = await Promise.any(
    survivors.map((node, i) =>
      node.waitEvent("leader:gained", 10_000, marks[i]).then((line) => ({ node, at: line.json.time as number })),
    ),
  );
  const failoverMs = taken.at - killedAt;
  t.diagnostic(
    `leader failover: ${failoverMs} ms after kill -9 of ${leader.name} (lease ${LEASE_MS} ms + renewal every ${HEARTBEAT_MS} ms); new leader ${taken.node.name}`,
  );
  assert.ok(failoverMs < FAILOVER_LIMIT_MS, `a new leader took ${failoverMs} ms (limit ${FAILOVER_LIMIT_MS} ms)`);

  // Both survivors agree on the new leader, and see the dead node as dead (before the rescuer prunes its row).
  const deadSeenAt = await eventually(
    "the survivors to agree on the new leader and see the killed node dead",
    10_000,
    async () => {
      const views = await Promise.all(
        survivors.map(async (node) => (await node.api<ClusterView>("GET", "/api/nodes")).body),
      );
      for (const view of views) {
        if (view.leader !== taken.node.nodeId) return undefined;
        const dead = view.nodes.find((row) => row.id === leader.nodeId);
        if (dead === undefined || dead.alive || dead.leader) return undefined;
        for (const node of survivors)
          if (view.nodes.find((row) => row.id === node.nodeId)?.alive !== true) return undefined;
      }
      return Date.now();
    },
    20,
  );
  t.diagnostic(`killed node listed alive:false after ${deadSeenAt - killedAt} ms`);

  // Exactly one survivor took the lease.
  const takers = survivors.filter((node, i) => node.events("leader:gained", marks[i]).length > 0);
  assert.deepEqual(
    takers.map((node) => node.name),
    [taken.node.name],
    "only one survivor became leader",
  );
});

test("a node's heartbeats stay on time while it starts, so the leader never rescues the tasks it has just claimed", {
  timeout: 60_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "startbeat");
  if (cluster === null) return;
  // The leader claims nothing; twenty 1.5 s tasks wait for the worker that starts next.
  const leader = await cluster.start({ name: "leader", concurrency: 0 });
  await cluster.settled();
  const tasks = Array.from({ length: 20 }, () => ({ type: "cluster.work", data: { ms: 1500 }, maxAttempts: 5 }));
  assert.equal((await leader.api("POST", "/api/tasks/bulk", { tasks })).status, 201);

  const store = cluster.store();
  const worker = await cluster.spawn({ name: "worker", concurrency: 20 });
  // Watch the worker's heartbeats in the store from its first one until its first tasks are done.
  const beats: number[] = [];
  const watching = (async () => {
    for (;;) {
      const row = (await store.nodeList()).find((node) => node.name === "worker");
      if (row !== undefined && row.heartbeatAt.getTime() !== beats.at(-1)) beats.push(row.heartbeatAt.getTime());
      const counts = await queueCounts(store, "work");
      if (counts.completed >= 20 || !worker.alive) return;
      await pause(10);
    }
  })();
  await worker.ready();
  await withTimeout(watching, 30_000, "the worker to complete the tasks");

  const gaps = beats.slice(1).map((beat, i) => beat - beats[i]!);
  const rescued = (await allEvents(store)).filter(
    (event) => event.type === "task.rescued" && (event.data as { node?: string }).node === worker.nodeId,
  );
  const started = worker.logs(/^conveyor node started$/)[0]!.json.time as number;
  const listening = worker.logs(/listening on/)[0]!.json.time as number;
  t.diagnostic(
    `starting worker: heartbeats ${beats.length}, longest silence ${Math.max(...gaps)} ms (dead after ${LEASE_MS} ms); ` +
      `"conveyor node started" → "listening" ${listening - started} ms; tasks rescued from it while alive: ${rescued.length}`,
  );
  assert.ok(worker.alive);
  assert.equal(
    rescued.length,
    0,
    `the leader rescued ${rescued.length} tasks from the live worker: its heartbeats went silent for ${Math.max(...gaps)} ms while it started`,
  );
  assert.ok(
    Math.max(...gaps) < LEASE_MS,
    `the worker's heartbeats went silent for ${Math.max(...gaps)} ms (dead after ${LEASE_MS} ms) while it started`,
  );
});
