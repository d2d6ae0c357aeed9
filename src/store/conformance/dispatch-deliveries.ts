/**
 * Conformance cases for dispatch's deliveries: attempts recorded only by the task of the current generation, alone
 * or many together; a 410 that holds and disables; held, discarded and rescheduled deliveries; enabling and
 * deleting a publisher; replays by id and by window.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { StoreTest } from "./helpers.ts";
import { at, T0 } from "./helpers.ts";
import { attemptAt, dispatchEvents, message, publisher, send, sendOne, TASK, topic } from "./dispatch-helpers.ts";

export function dispatchDeliveryCases(storeTest: StoreTest): void {
  describe("dispatch deliveries", () => {
    storeTest("an attempt is recorded once, by the task of the current generation", async (store) => {
      const t = await topic(store);
      const p = await publisher(store, t.id);
      const d = await sendOne(store, t.id);
      const record = (generation: number, status: number, outcome: "delivered" | "retry") => ({
        deliveryId: d.id,
        generation,
        attempt: attemptAt(at(2), status),
        outcome,
        nextAttemptAt: outcome === "retry" ? at(7) : null,
        disablePublisher: null,
      });
      assert.equal(
        await store.dispatch.deliveryRecord({ record: record(d.generation + 1, 200, "delivered"), now: at(2) }),
        null,
      );
      const failed = await store.dispatch.deliveryRecord({ record: record(d.generation, 500, "retry"), now: at(2) });
      assert.deepEqual(
        [failed?.state, failed?.attempts, failed?.step, failed?.nextAttemptAt, failed?.lastStatus],
        ["scheduled", 1, 1, at(7), 500],
      );
      assert.equal(
        await store.dispatch.deliveryRecord({ record: record(d.generation, 500, "retry"), now: at(3) }),
        null,
      );
      assert.deepEqual((await store.dispatch.publisherGet({ id: p.id }))?.failingSince, at(2));
      const [task] = await store.dispatch.deliveryPromoteDue({ now: at(7), limit: 10, task: TASK });
      const generation = (task!.data as { generation: number }).generation;
      const done = await store.dispatch.deliveryRecord({ record: record(generation, 204, "delivered"), now: at(8) });
      assert.deepEqual([done?.state, done?.attempts, done?.finishedAt], ["delivered", 2, at(8)]);
      assert.equal((await store.dispatch.publisherGet({ id: p.id }))?.failingSince, null);
      const attempts = await store.dispatch.attemptList({ deliveryId: d.id });
      assert.deepEqual(
        attempts.map((a) => [a.attempt, a.status, a.outcome, a.nextAttemptAt, a.taskId, a.durationMs]),
        [
          [1, 500, "retry", at(7), 1, 12],
          [2, 204, "delivered", null, 1, 12],
        ],
      );
      assert.deepEqual(attempts[0]!.request, attemptAt(T0, 1).request);
      const attempted = (await dispatchEvents(store)).filter((e) => e.type === "delivery.attempted");
      assert.deepEqual(
        attempted.map((e) => e.data),
        [
          {
            topic: "orders",
            delivery: d.id,
            message: done!.messageId,
            publisher: p.id,
            attempt: 1,
            status: 500,
            durationMs: 12,
            outcome: "retry",
            state: "scheduled",
            nextAttemptAt: at(7).toISOString(),
            error: "answered 500",
          },
          {
            topic: "orders",
            delivery: d.id,
            message: done!.messageId,
            publisher: p.id,
            attempt: 2,
            status: 204,
            durationMs: 12,
            outcome: "delivered",
            state: "delivered",
            nextAttemptAt: null,
            error: null,
          },
        ],
      );
    });

    storeTest("a failed attempt can end the delivery, or hold it and disable its publisher (410)", async (store) => {
      const t = await topic(store);
      const p = await publisher(store, t.id);
      const a = await sendOne(store, t.id);
      const b = await sendOne(store, t.id);
      const final = await store.dispatch.deliveryRecord({
        record: {
          deliveryId: a.id,
          generation: a.generation,
          attempt: attemptAt(at(1), null),
          outcome: "failed",
          nextAttemptAt: null,
          disablePublisher: null,
        },
        now: at(1),
      });
      assert.deepEqual([final?.state, final?.finishedAt, final?.lastError], ["failed", at(1), "connect ECONNREFUSED"]);
      const gone = await store.dispatch.deliveryRecord({
        record: {
          deliveryId: b.id,
          generation: b.generation,
          attempt: attemptAt(at(2), 410),
          outcome: "gone",
          nextAttemptAt: null,
          disablePublisher: "410 Gone",
        },
        now: at(2),
      });
      assert.equal(gone?.state, "held");
      const disabled = await store.dispatch.publisherGet({ id: p.id });
      assert.deepEqual([disabled?.active, disabled?.disabledReason], [false, "410 Gone"]);
      const publisherEvents = (await dispatchEvents(store)).filter((e) => e.type === "publisher.changed");
      assert.deepEqual(publisherEvents.at(-1)?.data, {
        topic: "orders",
        publisher: p.id,
        change: "disabled",
        active: false,
        deleted: false,
        reason: "410 Gone",
      });
    });

    storeTest(
      "attempts recorded together: each as alone, stale ones skipped, each publisher written once",
      async (store) => {
        const t = await topic(store);
        const one = await publisher(store, t.id, { target: "http://one.test/" });
        const two = await publisher(store, t.id, { target: "http://two.test/" });
        const { outcomes } = await send(store, t.id, [message(), message(), message()], T0);
        const [a, b, c] = outcomes.map((o) => o.deliveries);
        const record = (
          id: number,
          outcome: "delivered" | "retry" | "gone",
          status: number,
          disable: string | null = null,
        ) => ({
          deliveryId: id,
          generation: 1,
          attempt: attemptAt(at(1), status),
          outcome,
          nextAttemptAt: outcome === "retry" ? at(6) : null,
          disablePublisher: disable,
        });
        const recorded = await store.dispatch.deliveryRecordMany({
          records: [
            record(a![0]!.id, "delivered", 200),
            record(b![0]!.id, "gone", 410, "410 Gone"),
            { ...record(c![0]!.id, "delivered", 200), generation: 7 },
            record(a![1]!.id, "retry", 503),
          ],
          now: at(1),
        });
        assert.deepEqual(
          recorded.map((d) => d?.state ?? null),
          ["delivered", "held", null, "scheduled"],
        );
        const [first, second] = await Promise.all([
          store.dispatch.publisherGet({ id: one.id }),
          store.dispatch.publisherGet({ id: two.id }),
        ]);
        assert.deepEqual([first?.active, first?.disabledReason, first?.failingSince], [false, "410 Gone", null]);
        assert.deepEqual([second?.active, second?.failingSince], [true, at(1)]);
        assert.equal(
          (await store.dispatch.deliveryGet({ id: c![0]!.id }))?.state,
          "pending",
          "the stale one is untouched",
        );
        const events = (await dispatchEvents(store)).filter((e) => e.type !== "topic.changed");
        assert.deepEqual(
          events
            .slice(-4)
            .map((e) => e.type)
            .sort(),
          ["delivery.attempted", "delivery.attempted", "delivery.attempted", "publisher.changed"],
        );
        const works = await store.dispatch.deliveryWorkMany({ ids: [a![0]!.id, b![0]!.id, 999_999] });
        assert.deepEqual(
          works.map((w) => w.delivery.id).sort((x, y) => x - y),
          [a![0]!.id, b![0]!.id].sort((x, y) => x - y),
        );
      },
    );

    storeTest(
      "enabling a publisher makes its held deliveries due; deleting one discards those waiting",
      async (store) => {
        const t = await topic(store);
        const p = await publisher(store, t.id, { active: false });
        const { outcomes } = await send(store, t.id, [message(), message()]);
        const ids = outcomes.map((o) => o.deliveries[0]!.id);
        const enabled = await store.dispatch.publisherUpdate({ id: p.id, changes: { active: true }, now: at(5) });
        assert.equal(enabled?.released, 2);
        assert.equal(enabled?.publisher.disabledReason, null);
        assert.deepEqual(await store.dispatch.deliveryNextDueAt(), at(5));
        const tasks = await store.dispatch.deliveryPromoteDue({ now: at(5), limit: 1, task: TASK });
        assert.equal(tasks.length, 1, "promotion takes a bounded batch");
        await store.dispatch.publisherDelete({ id: p.id, now: at(6) });
        const states = await Promise.all(ids.map(async (id) => (await store.dispatch.deliveryGet({ id }))?.state));
        assert.deepEqual(states.sort(), ["discarded", "pending"], "the one with a task is discarded when it runs");
        const changed = (await dispatchEvents(store)).filter((e) => e.type === "delivery.changed");
        assert.deepEqual(
          changed.map((e) => [(e.data as { state: string }).state, (e.data as { reason: string }).reason]),
          [
            ["scheduled", "publisher enabled"],
            ["pending", "due"],
            ["discarded", "publisher deleted"],
          ],
        );
      },
    );

    storeTest("a task settles its delivery without an attempt: held, discarded, or later", async (store) => {
      const t = await topic(store);
      await publisher(store, t.id);
      const d = await sendOne(store, t.id);
      const settle = (generation: number, state: "held" | "discarded" | "scheduled", next: Date | null = null) =>
        store.dispatch.deliverySettle({ id: d.id, generation, state, nextAttemptAt: next, reason: "why", now: at(1) });
      const later = await settle(d.generation, "scheduled", at(2));
      assert.deepEqual([later?.state, later?.attempts, later?.nextAttemptAt], ["scheduled", 0, at(2)]);
      assert.equal(await settle(d.generation, "held"), null, "a stale generation settles nothing");
      const [task] = await store.dispatch.deliveryPromoteDue({ now: at(2), limit: 5, task: TASK });
      const held = await settle((task!.data as { generation: number }).generation, "held");
      assert.deepEqual([held?.state, held?.attempts], ["held", 0]);
    });

    storeTest(
      "replay: failed and cancelled deliveries, by id or a publisher's window, from the start",
      async (store) => {
        const t = await topic(store);
        const p = await publisher(store, t.id);
        const fail = async (now: Date) => {
          const d = await sendOne(store, t.id, now);
          await store.dispatch.deliveryRecord({
            record: {
              deliveryId: d.id,
              generation: d.generation,
              attempt: attemptAt(now, 500),
              outcome: "failed",
              nextAttemptAt: null,
              disablePublisher: null,
            },
            now,
          });
          return d.id;
        };
        const early = await fail(at(10));
        const middle = await fail(at(20));
        const late = await fail(at(30));
        const pending = (await sendOne(store, t.id, at(21))).id;
        const cancelled = await store.dispatch.deliveryCancel({ id: pending, now: at(22) });
        assert.equal(cancelled?.state, "cancelled");
        assert.equal((await store.dispatch.deliveryCancel({ id: pending, now: at(23) }))?.state, "cancelled");
        assert.equal(await store.dispatch.deliveryCancel({ id: 999, now: at(23) }), null);
        const window = { publisherId: p.id, from: at(15), to: at(30) };
        const replayed = await store.dispatch.deliveryReplay({ window, limit: 100, now: at(40) });
        assert.deepEqual(
          replayed.sort((a, b) => a - b),
          [middle, pending].sort((a, b) => a - b),
        );
        const again = await store.dispatch.deliveryGet({ id: middle });
        assert.deepEqual(
          [again?.state, again?.step, again?.attempts, again?.nextAttemptAt],
          ["scheduled", 0, 1, at(40)],
        );
        assert.deepEqual(await store.dispatch.deliveryReplay({ ids: [middle, 999], limit: 10, now: at(41) }), []);
        await store.dispatch.publisherUpdate({ id: p.id, changes: { active: false }, now: at(42) });
        assert.deepEqual(await store.dispatch.deliveryReplay({ ids: [early], limit: 10, now: at(43) }), [early]);
        assert.equal((await store.dispatch.deliveryGet({ id: early }))?.state, "held", "its publisher is disabled");
        await store.dispatch.publisherDelete({ id: p.id, now: at(44) });
        assert.deepEqual(await store.dispatch.deliveryReplay({ ids: [late], limit: 10, now: at(45) }), []);
      },
    );
  });
}
