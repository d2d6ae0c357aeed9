/**
 * Conformance cases for what people ask of deliveries besides lists: how many are in each state (capped, overall
 * and per publisher), and "retry now" for one waiting for its next attempt.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { StoreTest } from "./helpers.ts";
import { at } from "./helpers.ts";
import { attemptAt, dispatchEvents, message, publisher, send, sendOne, TASK, topic } from "./dispatch-helpers.ts";

export function dispatchCountCases(storeTest: StoreTest): void {
  describe("dispatch counts and retry now", () => {
    storeTest("deliveries counted per state, overall and per publisher, up to the limit", async (store) => {
      const t = await topic(store);
      const a = await publisher(store, t.id, { target: "http://a.test/" });
      const b = await publisher(store, t.id, { target: "http://b.test/", active: false });
      const none = { scheduled: 0, pending: 0, held: 0, failed: 0, discarded: 0, cancelled: 0 };
      assert.deepEqual(await store.dispatch.deliveryCounts({ limit: 3, publisherIds: [] }), {
        states: none,
        publishers: [],
      });
      // Five messages: a's deliveries pending, b's held; one of a's delivered, one failed, one waits for later.
      const { tasks } = await send(
        store,
        t.id,
        [1, 2, 3, 4, 5].map((n) => message({ n })),
        at(1),
      );
      const record = (i: number, status: number, outcome: "delivered" | "failed" | "retry") => {
        const data = tasks[i]!.data as { delivery: number; generation: number };
        return store.dispatch.deliveryRecord({
          record: {
            deliveryId: data.delivery,
            generation: data.generation,
            attempt: attemptAt(at(2), status),
            outcome,
            nextAttemptAt: outcome === "retry" ? at(60) : null,
            disablePublisher: null,
          },
          now: at(2),
        });
      };
      await record(0, 200, "delivered");
      await record(1, 500, "failed");
      await record(2, 500, "retry");
      const counts = await store.dispatch.deliveryCounts({ limit: 3, publisherIds: [b.id, a.id, 999] });
      assert.deepEqual(counts.states, { ...none, pending: 2, held: 3, failed: 1, scheduled: 1 }, "held: 5, capped");
      assert.deepEqual(counts.publishers, [
        { publisherId: b.id, states: { ...none, held: 3 } },
        { publisherId: a.id, states: { ...none, pending: 2, failed: 1, scheduled: 1 } },
        { publisherId: 999, states: none },
      ]);
      const uncapped = await store.dispatch.deliveryCounts({ limit: 100, publisherIds: [] });
      assert.equal(uncapped.states.held, 5);
    });

    storeTest("retry now: a scheduled delivery is due now, no attempt spent, its schedule kept", async (store) => {
      const t = await topic(store);
      await publisher(store, t.id);
      const d = await sendOne(store, t.id, at(1));
      const waiting = await store.dispatch.deliveryRecord({
        record: {
          deliveryId: d.id,
          generation: d.generation,
          attempt: attemptAt(at(2), 500),
          outcome: "retry",
          nextAttemptAt: at(300),
          disablePublisher: null,
        },
        now: at(2),
      });
      assert.equal(waiting?.state, "scheduled");
      assert.equal(await store.dispatch.deliveryNextDueAt().then((next) => next?.getTime()), at(300).getTime());
      const now = await store.dispatch.deliveryRetryNow({ id: d.id, now: at(10) });
      assert.deepEqual(
        [now?.state, now?.nextAttemptAt, now?.attempts, now?.step, now?.generation],
        ["scheduled", at(10), 1, 1, waiting!.generation],
      );
      assert.deepEqual(await store.dispatch.deliveryNextDueAt(), at(10));
      const changed = (await dispatchEvents(store)).filter((e) => e.type === "delivery.changed").at(-1);
      assert.deepEqual(changed?.data, {
        topic: "orders",
        deliveries: [d.id],
        state: "scheduled",
        reason: "retry now",
        publisher: null,
      });
      // Due already: asked again later, it stays due when it was.
      assert.deepEqual((await store.dispatch.deliveryRetryNow({ id: d.id, now: at(20) }))?.nextAttemptAt, at(10));
      const [task] = await store.dispatch.deliveryPromoteDue({ now: at(20), limit: 5, task: TASK });
      assert.equal((task!.data as { delivery: number }).delivery, d.id);
      assert.equal(await store.dispatch.deliveryRetryNow({ id: d.id, now: at(21) }), null, "pending: it has a task");
      assert.equal(await store.dispatch.deliveryRetryNow({ id: 999, now: at(21) }), null);
      assert.equal((await store.dispatch.deliveryGet({ id: d.id }))?.state, "pending");
    });
  });
}
