/**
 * Settings a `conveyor start` node reads from its environment reach the cluster's behaviour: CONVEYOR_MAX_STALLS
 * (times a task may be found on a dead node before it fails) is checked by src/core/config.ts, so a node must
 * also apply it. Three workers are started one after another; each runs the same long task until it is
 * `kill -9`ed; with CONVEYOR_MAX_STALLS=1 the second stall fails the task (the default, 3, would run it a third time).
 *
 * Each worker is started (and idle) before the previous one is killed, so no task is claimed by a node that is
 * still starting (see membership.test.ts about starting nodes that look dead).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, eventually, type NodeProcess } from "./harness.ts";
import type { Task } from "../../src/index.ts";

test("CONVEYOR_MAX_STALLS is applied by conveyor start: with 1, a task whose node dies twice fails", {
  timeout: 90_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "maxstalls");
  if (cluster === null) return;
  const env = { CONVEYOR_MAX_STALLS: "1" };
  const [leader, first] = await cluster.startAll([
    { name: "leader", concurrency: 0, env },
    { name: "w1", concurrency: 1, env },
  ]);
  await cluster.settled();
  const { body } = await leader!.api<{ task: Task }>("POST", "/api/tasks", {
    type: "cluster.work",
    data: { ms: 120_000 },
    maxAttempts: 20,
  });
  const id = body.task.id;

  const runningOn = (node: NodeProcess, attempt: number) =>
    eventually(`task ${id} attempt ${attempt} to run on ${node.name}`, 15_000, async () => {
      const { body: got } = await leader!.api<{ task: Task }>("GET", `/api/tasks/${id}`);
      return got.task.state === "running" && got.task.node === node.nodeId && got.task.attempt === attempt
        ? got.task
        : undefined;
    });

  let worker = first!;
  await runningOn(worker, 1);
  for (let stall = 1; stall <= 2; stall++) {
    const next = await cluster.start({ name: `w${stall + 1}`, concurrency: 1, env });
    await cluster.settled();
    await worker.kill9();
    const task = await eventually(`task ${id} to be rescued (stall ${stall})`, 15_000, async () => {
      const { body: got } = await leader!.api<{ task: Task }>("GET", `/api/tasks/${id}`);
      return got.task.stalls >= stall ? got.task : undefined;
    });
    t.diagnostic(`after stall ${stall}: task ${id} is ${task.state} (attempt ${task.attempt}, stalls ${task.stalls})`);
    if (stall === 1) {
      assert.notEqual(task.state, "failed", "one stall is allowed with CONVEYOR_MAX_STALLS=1");
      await runningOn(next, 2);
      worker = next;
    } else {
      assert.equal(
        task.state,
        "failed",
        `CONVEYOR_MAX_STALLS=1 fails a task at its second stall, but it is ${task.state} (the node used its default of 3)`,
      );
      assert.match(task.error?.message ?? "", /stopped while running/);
    }
  }
});
