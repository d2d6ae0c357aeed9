/**
 * Conformance cases for dispatch's store (DispatchStore): topics and publishers with Postoffice's uniqueness, a
 * message's deliveries and their tasks made in one transaction, attempts recorded only by the task of the current
 * generation, and the ways a delivery waits (scheduled, held) and comes back (promoted, released, replayed).
 * Search and lists are in dispatch-search.ts.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { ConflictError } from "../../core/errors.ts";
import type { StoreTest } from "./helpers.ts";
import { allTasks, at, T0 } from "./helpers.ts";
import { attemptAt, dispatchEvents, message, publisher, send, sendOne, TASK, topic } from "./dispatch-helpers.ts";
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

    dispatchSearchCases(storeTest);
  });
}
