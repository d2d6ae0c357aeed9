/**
 * Conformance cases for the event log: every transition appends its event at increasing offsets, a task's events are
 * listed from every transaction that touched it, and eventList pages by offset from anywhere (even inside one
 * transaction's events) and filters by task.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { TaskEventType } from "../../core/task.ts";
import { T0, at, taskInput, insert, running, errorRecord, eventTypes, type StoreTest } from "./helpers.ts";

export function eventLogCases(storeTest: StoreTest): void {
  describe("event log", () => {
    storeTest("an empty log has last offset 0", async (store) => {
      assert.equal(await store.eventLastOffset(), 0);
      assert.deepEqual(await store.eventList({ after: 0, limit: 10 }), []);
    });

    storeTest("every transition appends its event, in strictly increasing offsets", async (store) => {
      const expect: { type: TaskEventType; taskId: number; queue: string; at: Date }[] = [];
      const check = async (label: string) => {
        const events = await store.eventList({ after: 0, limit: 1000 });
        assert.deepEqual(
          events.map((e) => ({ type: e.type, taskId: e.taskId, queue: e.queue, at: e.at })),
          expect,
          `events after ${label}`,
        );
        for (let i = 1; i < events.length; i++)
          assert.ok(events[i]!.offset > events[i - 1]!.offset, "offsets increase");
        for (const e of events) assert.ok(Number.isSafeInteger(e.offset) && e.offset > 0);
        assert.equal(await store.eventLastOffset(), events.at(-1)?.offset ?? 0, `last offset after ${label}`);
      };

      const a = await insert(store, { queue: "qa" });
      expect.push({ type: "task.created", taskId: a.id, queue: "qa", at: T0 });
      await check("insert");

      await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(1) });
      expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(1) });
      await check("claim");

      await store.taskProgress({ id: a.id, attempt: 1, progress: { percent: 10 }, now: at(2) });
      expect.push({ type: "task.progress", taskId: a.id, queue: "qa", at: at(2) });
      await check("progress");

      await store.taskFail({ id: a.id, attempt: 1, error: errorRecord("x", 1, at(3)), retryAt: at(10), now: at(3) });
      expect.push({ type: "task.retrying", taskId: a.id, queue: "qa", at: at(3) });
      await check("fail with retry");

      await store.taskPromote({ now: at(10), limit: 10 });
      expect.push({ type: "task.promoted", taskId: a.id, queue: "qa", at: at(10) });
      await check("promote");

      await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(11) });
      expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(11) });
      await store.taskFail({ id: a.id, attempt: 2, error: errorRecord("y", 2, at(12)), retryAt: null, now: at(12) });
      expect.push({ type: "task.failed", taskId: a.id, queue: "qa", at: at(12) });
      await check("final failure");

      await store.taskRerun({ id: a.id, now: at(13) });
      expect.push({ type: "task.rerun", taskId: a.id, queue: "qa", at: at(13) });
      await check("rerun");

      await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(14) });
      expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(14) });
      await store.taskComplete({
        now: at(15),
        completions: [{ id: a.id, queue: a.queue, attempt: 1, result: "ok" }],
      });
      expect.push({ type: "task.completed", taskId: a.id, queue: "qa", at: at(15) });
      await check("complete");

      const b = await insert(store, { queue: "qb" }, at(16));
      expect.push({ type: "task.created", taskId: b.id, queue: "qb", at: at(16) });
      await store.taskCancel({ id: b.id, reason: "x", now: at(17) });
      expect.push({ type: "task.cancelled", taskId: b.id, queue: "qb", at: at(17) });
      await check("cancel");

      const c = await running(store, { queue: "qc" }, "ghost", at(18));
      expect.push({ type: "task.created", taskId: c.id, queue: "qc", at: T0 });
      expect.push({ type: "task.started", taskId: c.id, queue: "qc", at: at(18) });
      await store.taskRescue({ rescuer: "rescuer", deadBefore: at(19), maxStalls: 5, now: at(20) });
      expect.push({ type: "task.rescued", taskId: c.id, queue: "qc", at: at(20) });
      await check("rescue");

      // Operations that change nothing write nothing.
      await store.taskInsertMany({ now: at(21), tasks: [] });
      await store.taskComplete({
        now: at(21),
        completions: [{ id: a.id, queue: a.queue, attempt: 1, result: "again" }],
      });
      await store.taskCancel({ id: a.id, reason: "x", now: at(21) });
      await store.taskPromote({ now: at(21), limit: 10 });
      await check("no-ops");
    });

    storeTest("a task's events come from every transaction that touched it, in offset order", async (store) => {
      const [a, b] = (
        await store.taskInsertMany({ now: T0, tasks: [taskInput({ queue: "q" }), taskInput({ queue: "q" })] })
      ).map((o) => o.task);
      for (let attempt = 1; attempt <= 3; attempt++) {
        const claimed = await store.taskClaim({
          queue: "q",
          types: ["t"],
          node: "n1",
          limit: 10,
          now: at(attempt * 10),
        });
        assert.equal(claimed.length, 2);
        await store.taskProgress({ id: a!.id, attempt, progress: { percent: 50 }, now: at(attempt * 10 + 1) });
        for (const task of claimed) {
          const final = attempt === 3;
          await store.taskFail({
            id: task.id,
            attempt,
            error: errorRecord("x", attempt, at(attempt * 10 + 2)),
            retryAt: final ? null : at(attempt * 10 + 5),
            now: at(attempt * 10 + 2),
          });
        }
        await store.taskPromote({ now: at(attempt * 10 + 5), limit: 10 });
      }
      const all = await store.eventList({ after: 0, limit: 1000 });
      const ofA = all.filter((e) => e.taskId === a!.id && e.type !== "task.progress");
      assert.deepEqual(
        await store.eventList({ after: 0, limit: 1000, taskId: a!.id }),
        ofA,
        "progress events stay out of a task's own list",
      );
      assert.deepEqual(
        ofA.map((e) => e.type),
        [
          "task.created",
          "task.started",
          "task.retrying",
          "task.promoted",
          "task.started",
          "task.retrying",
          "task.promoted",
          "task.started",
          "task.failed",
        ],
      );
      assert.deepEqual(await store.eventList({ after: ofA[3]!.offset, limit: 2, taskId: a!.id }), ofA.slice(4, 6));
      assert.equal(all.filter((e) => e.taskId === b!.id).length, 9);
      assert.deepEqual(await store.eventList({ after: 0, limit: 10, taskId: 987_654 }), []);
    });

    storeTest("eventList pages by offset and filters by task", async (store) => {
      const a = await insert(store, { queue: "a" });
      const b = await insert(store, { queue: "b" });
      await store.taskClaim({ queue: "a", types: ["t"], node: "n1", limit: 1, now: at(1) });
      await store.taskClaim({ queue: "b", types: ["t"], node: "n1", limit: 1, now: at(2) });
      await store.taskComplete({ now: at(3), completions: [{ id: a.id, queue: a.queue, attempt: 1, result: null }] });

      const all = await store.eventList({ after: 0, limit: 100 });
      assert.equal(all.length, 5);
      const page = await store.eventList({ after: all[1]!.offset, limit: 2 });
      assert.deepEqual(page, all.slice(2, 4));
      assert.deepEqual(await store.eventList({ after: all[4]!.offset, limit: 10 }), []);
      assert.deepEqual(
        await store.eventList({ after: 0, limit: 100, taskId: a.id }),
        all.filter((e) => e.taskId === a.id),
      );
      assert.deepEqual(await eventTypes(store, a.id), ["task.created", "task.started", "task.completed"]);
      assert.deepEqual(await eventTypes(store, b.id), ["task.created", "task.started"]);
      const afterFirstOfA = await store.eventList({ after: all[0]!.offset, limit: 1, taskId: a.id });
      assert.deepEqual(
        afterFirstOfA.map((e) => e.type),
        ["task.started"],
      );
      for (const e of all) assert.ok(e.at instanceof Date);
    });

    storeTest(
      "alike events of one transaction list one by one, from any offset, each with data of its own",
      async (store) => {
        // One batch: six created events alike but for the id, then a claim's six started events, one of them a retry.
        const tasks = (
          await store.taskInsertMany({ now: T0, tasks: Array.from({ length: 6 }, () => taskInput()) })
        ).map((o) => o.task);
        const [retried] = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 1, now: T0 });
        await store.taskFail({
          id: retried!.id,
          attempt: 1,
          error: { name: "E", message: "m", attempt: 1, at: T0.toISOString() },
          retryAt: T0,
          now: T0,
        });
        await store.taskPromote({ now: at(1), limit: 10 });
        const claimed = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 10, now: at(2) });
        assert.equal(claimed.length, 6);

        const all = await store.eventList({ after: 0, limit: 100 });
        const created = all.filter((e) => e.type === "task.created");
        assert.deepEqual(
          created.map((e) => e.taskId),
          tasks.map((t) => t.id),
        );
        assert.deepEqual(
          created.map((e) => e.offset),
          tasks.map((_, i) => all[0]!.offset + i),
          "consecutive offsets",
        );
        const started = all.slice(-6);
        assert.deepEqual(
          started.map((e) => [e.type, e.taskId, e.data]),
          claimed.map((t) => ["task.started", t.id, { attempt: t.attempt, node: "n1" }]),
        );
        for (let i = 1; i < all.length; i++) assert.equal(all[i]!.offset, all[i - 1]!.offset + 1);
        // Any page boundary, even inside a transaction's events, gives the same sequence.
        for (let k = 0; k < all.length; k++) {
          assert.deepEqual(
            await store.eventList({ after: all[k]!.offset, limit: 2 }),
            all.slice(k + 1, k + 3),
            `after ${all[k]!.offset}`,
          );
        }
        for (const task of tasks) {
          assert.deepEqual(
            await store.eventList({ after: 0, limit: 100, taskId: task.id }),
            all.filter((e) => e.taskId === task.id),
          );
        }
        (created[0]!.data as { type: string }).type = "changed";
        assert.equal((created[1]!.data as { type: string }).type, "t", "events do not share data objects");
      },
    );
  });
}
