/**
 * Conformance cases for dispatch's store (DispatchStore): topics and publishers with Postoffice's uniqueness, a
 * message's deliveries and their tasks made in one transaction, attempts recorded only by the task of the current
 * generation, and the ways a delivery waits (scheduled, held) and comes back (promoted, released, replayed).
 * Attempts and the delivery states are in dispatch-deliveries.ts, search and lists in dispatch-search.ts.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { ConflictError } from "../../core/errors.ts";
import type { StoreTest } from "./helpers.ts";
import { allTasks, at, T0 } from "./helpers.ts";
import { dispatchEvents, message, publisher, send, TASK, topic } from "./dispatch-helpers.ts";
import { dispatchCountCases } from "./dispatch-counts.ts";
import { dispatchDeliveryCases } from "./dispatch-deliveries.ts";
import { dispatchSearchCases } from "./dispatch-search.ts";

const isConflict = (code: string) => (error: unknown) => error instanceof ConflictError && error.code === code;

export function dispatchCases(storeTest: StoreTest): void {
  describe("dispatch", () => {
    storeTest("topics: a name is unique; get by id or name; update; recovery hosts once each", async (store) => {
      const orders = await topic(store, "orders");
      assert.equal(orders.name, "orders");
      assert.deepEqual(orders.createdAt, T0);
      await assert.rejects(topic(store, "orders"), isConflict("duplicate_topic"));
      assert.deepEqual(await store.dispatch.topicGet({ name: "orders" }), orders);
      assert.deepEqual(await store.dispatch.topicGet({ id: orders.id }), orders);
      assert.equal(await store.dispatch.topicGet({ name: "nope" }), null);
      const other = await topic(store, "other");
      const updated = await store.dispatch.topicUpdate({
        id: other.id,
        changes: { recoveryEnabled: true },
        now: at(1),
      });
      assert.equal(updated?.recoveryEnabled, true);
      assert.equal(updated?.originHost, "http://origin.test/");
      const kept = await store.dispatch.topicUpdate({
        id: other.id,
        changes: { originHost: "http://other.test/", recoveryEnabled: undefined },
        now: at(1),
      });
      assert.deepEqual(
        [kept?.originHost, kept?.recoveryEnabled],
        ["http://other.test/", true],
        "undefined changes nothing",
      );
      await store.dispatch.topicUpdate({ id: orders.id, changes: { recoveryEnabled: true }, now: at(1) });
      assert.deepEqual(await store.dispatch.topicRecoveryHosts(), ["http://origin.test/", "http://other.test/"]);
      assert.equal(await store.dispatch.topicUpdate({ id: 999, changes: {}, now: at(1) }), null);
      assert.deepEqual(
        (await store.dispatch.topicList()).map((t) => t.name),
        ["orders", "other"],
      );
      const events = await dispatchEvents(store);
      assert.deepEqual(
        events.map((e) => [e.type, e.channel, (e.data as { change: string }).change]),
        [
          ["topic.changed", "topic:orders", "created"],
          ["topic.changed", "topic:other", "created"],
          ["topic.changed", "topic:other", "updated"],
          ["topic.changed", "topic:other", "updated"],
          ["topic.changed", "topic:orders", "updated"],
        ],
      );
    });

    storeTest("publishers: (topic, target, type) unique among undeleted ones; list; update; delete", async (store) => {
      const t = await topic(store);
      const a = await publisher(store, t.id, { target: "http://a.test/" });
      assert.equal(a.topicName, "orders");
      assert.equal(a.active, true);
      assert.equal(a.deleted, false);
      await assert.rejects(publisher(store, t.id, { target: "http://a.test/" }), isConflict("duplicate_publisher"));
      const amqp = await publisher(store, t.id, { target: "http://a.test/", type: "amqp" });
      const b = await publisher(store, t.id, {
        target: "http://b.test/",
        secrets: [{ secret: "whsec_x", expiresAt: null }],
      });
      assert.deepEqual(b.secrets, [{ secret: "whsec_x", expiresAt: null }]);
      await assert.rejects(
        store.dispatch.publisherUpdate({ id: b.id, changes: { target: "http://a.test/" }, now: at(1) }),
        isConflict("duplicate_publisher"),
      );
      const changed = await store.dispatch.publisherUpdate({
        id: b.id,
        changes: {
          target: "http://c.test/",
          secondsTimeout: 9,
          concurrency: 2,
          active: false,
          disabledReason: "x",
          retryMode: undefined,
        },
        now: at(1),
      });
      assert.deepEqual(
        [changed?.publisher.target, changed?.publisher.secondsTimeout, changed?.publisher.concurrency],
        ["http://c.test/", 9, 2],
      );
      assert.equal(changed?.publisher.disabledReason, "x");
      assert.equal(changed?.publisher.retryMode, "schedule", "undefined changes nothing");
      const deleted = await store.dispatch.publisherDelete({ id: a.id, now: at(2) });
      assert.equal(deleted?.deleted, true);
      assert.equal((await store.dispatch.publisherDelete({ id: a.id, now: at(3) }))?.deleted, true);
      assert.equal(await store.dispatch.publisherDelete({ id: 999, now: at(3) }), null);
      assert.equal(await store.dispatch.publisherUpdate({ id: a.id, changes: { active: false }, now: at(3) }), null);
      // A deleted publisher's target is free again.
      await publisher(store, t.id, { target: "http://a.test/" });
      assert.deepEqual(
        (await store.dispatch.publisherList({ topicId: t.id })).map((p) => p.target),
        ["http://a.test/", "http://c.test/", "http://a.test/"],
      );
      assert.equal((await store.dispatch.publisherList({ includeDeleted: true })).length, 4);
      assert.equal((await store.dispatch.publisherGet({ id: amqp.id }))?.type, "amqp");
    });

    storeTest("a message gets one delivery per undeleted publisher and a task for each ready one", async (store) => {
      const t = await topic(store);
      const active = await publisher(store, t.id, { target: "http://a.test/" });
      const disabled = await publisher(store, t.id, { target: "http://b.test/", active: false });
      const gone = await publisher(store, t.id, { target: "http://c.test/" });
      await store.dispatch.publisherDelete({ id: gone.id, now: T0 });
      const { outcomes, tasks } = await send(store, t.id, [message({ a: 1 }), message({ b: 2 })], at(1));
      assert.equal(outcomes.length, 2);
      for (const outcome of outcomes) {
        assert.equal(outcome.created, true);
        assert.deepEqual(
          outcome.deliveries.map((d) => [d.publisherId, d.state]),
          [
            [active.id, "pending"],
            [disabled.id, "held"],
          ],
        );
      }
      assert.deepEqual(
        tasks.map((task) => [task.type, task.queue, task.state, task.maxAttempts, task.data]),
        outcomes.map((o) => [TASK.type, TASK.queue, "queued", 5, { delivery: o.deliveries[0]!.id, generation: 1 }]),
      );
      assert.deepEqual(
        (await allTasks(store)).map((task) => task.id),
        tasks.map((task) => task.id),
        "the tasks are in the store",
      );
      const stored = await store.dispatch.messageGet({ id: outcomes[1]!.message.id });
      assert.deepEqual(stored?.payload, { b: 2 });
      assert.equal(stored?.topicName, "orders");
      assert.deepEqual(stored?.receivedAt, at(1));
      const [received] = (await dispatchEvents(store)).filter((e) => e.type === "dispatch.received");
      assert.deepEqual(received?.data, {
        topic: "orders",
        messages: outcomes.map((o) => o.message.id),
        deliveries: 4,
        pending: 2,
        scheduled: 0,
        held: 2,
      });
      assert.equal(received?.channel, "topic:orders");
    });

    storeTest("a message without publishers is stored with no delivery; keys and order kept", async (store) => {
      const t = await topic(store);
      const { outcomes, tasks } = await send(store, t.id, [message({ z: 1, a: [1, "x"], m: { k: null } })]);
      assert.deepEqual(outcomes[0]!.deliveries, []);
      assert.deepEqual(tasks, []);
      const stored = await store.dispatch.messageGet({ id: outcomes[0]!.message.id });
      assert.deepEqual(Object.keys(stored!.payload as object), ["z", "a", "m"], "the payload's key order is kept");
    });

    storeTest("an idempotency key gives the first message again, not another", async (store) => {
      const t = await topic(store);
      await publisher(store, t.id);
      const first = await send(store, t.id, [message({ n: 1 }, {}, "k1")]);
      const again = await send(store, t.id, [message({ n: 2 }, {}, "k1"), message({ n: 3 }, {}, "k2")], at(1));
      assert.equal(again.outcomes[0]!.created, false);
      assert.equal(again.outcomes[0]!.message.id, first.outcomes[0]!.message.id);
      assert.deepEqual(again.outcomes[0]!.deliveries, first.outcomes[0]!.deliveries);
      assert.equal(again.outcomes[1]!.created, true);
      assert.equal(again.tasks.length, 1, "only the new message's delivery gets a task");
      assert.deepEqual((await store.dispatch.messageGet({ id: first.outcomes[0]!.message.id }))?.payload, { n: 1 });
    });

    storeTest("a message due later waits scheduled, and is promoted with a task when due", async (store) => {
      const t = await topic(store);
      await publisher(store, t.id);
      const { outcomes, tasks } = await send(store, t.id, [message()], T0, at(60));
      assert.deepEqual(tasks, []);
      const id = outcomes[0]!.deliveries[0]!.id;
      assert.equal((await store.dispatch.deliveryGet({ id }))?.state, "scheduled");
      assert.deepEqual(await store.dispatch.deliveryNextDueAt(), at(60));
      assert.deepEqual(await store.dispatch.deliveryPromoteDue({ now: at(59), limit: 10, task: TASK }), []);
      const promoted = await store.dispatch.deliveryPromoteDue({ now: at(60), limit: 10, task: TASK });
      assert.deepEqual(
        promoted.map((task) => task.data),
        [{ delivery: id, generation: 2 }],
      );
      const delivery = await store.dispatch.deliveryGet({ id });
      assert.deepEqual([delivery?.state, delivery?.generation, delivery?.nextAttemptAt], ["pending", 2, null]);
      assert.equal(await store.dispatch.deliveryNextDueAt(), null);
    });

    storeTest("deliveryWork reads the delivery with its message, publisher and topic", async (store) => {
      const t = await topic(store);
      const p = await publisher(store, t.id, { secondsTimeout: 7 });
      const { outcomes } = await send(store, t.id, [message({ order: 1 }, { kind: "new" })]);
      const work = await store.dispatch.deliveryWork({ id: outcomes[0]!.deliveries[0]!.id });
      assert.deepEqual(work?.message.payload, { order: 1 });
      assert.deepEqual(work?.message.attributes, { kind: "new" });
      assert.equal(work?.message.topicName, "orders");
      assert.deepEqual(work?.publisher, p);
      assert.equal(work?.delivery.state, "pending");
      assert.equal(await store.dispatch.deliveryWork({ id: 999 }), null);
    });

    storeTest("a topic whose name a channel cannot hold has its events on dispatch only", async (store) => {
      const odd = await topic(store, "orders / eu");
      await publisher(store, odd.id);
      await send(store, odd.id, [message()]);
      const events = await dispatchEvents(store);
      assert.deepEqual(
        events.map((e) => [e.type, e.channel]),
        [
          ["topic.changed", "dispatch"],
          ["publisher.changed", "dispatch"],
          ["dispatch.received", "dispatch"],
        ],
      );
    });

    dispatchDeliveryCases(storeTest);
    dispatchSearchCases(storeTest);
    dispatchCountCases(storeTest);
  });
}
