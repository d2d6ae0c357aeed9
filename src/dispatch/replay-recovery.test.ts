/**
 * Replay and recovery end to end (SQLite and PostgreSQL): a failed delivery sent again from the start of its
 * schedule, a publisher's failures replayed over a window of time, and messages recovered from an origin host
 * (Postoffice's rescuer: GET the list, ingest, DELETE each), once each even when the origin lists them again.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConflictError } from "../core/errors.ts";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { nextAttempt, ordersToReceiver } from "./fixtures/dispatch-node.ts";
import { Receiver } from "./fixtures/receiver.ts";

for (const store of await testStores("dispatch replay and recovery")) {
  describe(`replay and recovery on ${store}`, () => {
    test("a failed delivery is replayed from the start of its schedule; a delivered one is not", async (t) => {
      const { dispatch, receiver } = await ordersToReceiver(t, store, { max_attempts: 1 });
      receiver.answer = () => ({ status: 500 });
      const failed = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      assert.equal((await failed).outcome, "failed");
      receiver.answer = () => ({ status: 200 });
      const delivered = nextAttempt(dispatch, (e) => e.outcome === "delivered");
      const retried = await dispatch.replayDelivery(deliveryIds[0]!);
      assert.ok(retried.state === "scheduled" || retried.state === "pending" || retried.state === "delivered");
      const done = (await delivered).delivery;
      assert.deepEqual([done.attempts, done.step], [2, 0]);
      await assert.rejects(
        dispatch.replayDelivery(deliveryIds[0]!),
        (error: unknown) => error instanceof ConflictError && error.code === "invalid_state",
      );
    });

    test("a publisher's failures in a window are replayed, those outside it are not", async (t) => {
      const { dispatch, receiver, clock, publisherId } = await ordersToReceiver(t, store, { max_attempts: 1 });
      receiver.answer = () => ({ status: 500 });
      const fail = async (n: number) => {
        const failed = nextAttempt(dispatch, (e) => e.outcome === "failed");
        const { deliveryIds } = await dispatch.send("orders", [{ payload: { n } }]);
        await failed;
        clock.advance(60_000);
        return deliveryIds[0]!;
      };
      const start = clock.now();
      const early = await fail(1);
      const from = clock.now();
      const inside = [await fail(2), await fail(3)];
      const to = clock.now();
      const late = await fail(4);
      receiver.answer = () => ({ status: 200 });
      const delivered = Promise.all(
        inside.map((id) => nextAttempt(dispatch, (e) => e.delivery.id === id && e.outcome === "delivered")),
      );
      assert.deepEqual(await dispatch.replay(publisherId, { from, to }), { replayed: 2 });
      await delivered;
      assert.equal((await dispatch.delivery(early)).state, "failed");
      assert.equal((await dispatch.delivery(late)).state, "failed");
      assert.deepEqual(await dispatch.replay(publisherId, { from, to }), { replayed: 0 }, "delivered now");
      assert.ok(start < from);
    });

    test("recovery: the origin's messages are ingested and deleted there, once each", async (t) => {
      const { dispatch, receiver } = await ordersToReceiver(t, store);
      const origin = await new Receiver().start();
      t.after(() => origin.stop());
      const listed = [
        { id: 1, topic: "orders", payload: { order: 1 }, attributes: { from: "outbox" } },
        {
          id: 2,
          bulk: true,
          payload: [
            { topic: "orders", payload: { order: 2 } },
            { topic: "orders", payload: { order: 3 } },
          ],
        },
        { id: 3, topic: "unknown-topic", payload: { order: 4 } },
        { id: 4, nonsense: true },
      ];
      let deletes = 200;
      origin.answer = (request) =>
        request.method === "GET" ? { status: 200, body: JSON.stringify(listed) } : { status: deletes };
      const topic = await dispatch.createTopic({ name: "outboxed", originHost: origin.url("/outbox/") });
      await dispatch.updateTopic(topic.id, { recoveryEnabled: true });
      const schedules = await dispatch.conveyor.schedules();
      assert.deepEqual(
        schedules.filter((s) => s.name === "dispatch.recovery").map((s) => [s.type, s.cron]),
        [["dispatch.recover", "*/30 * * * * *"]],
      );
      const all = Promise.all([1, 2, 3].map((order) => receiver.next((r) => JSON.parse(r.body).order === order)));
      const reports = (await dispatch.recover()) as { listed: number; ingested: number; deleted: number }[];
      assert.deepEqual(
        reports.map((r) => [r.listed, r.ingested, r.deleted]),
        [[4, 2, 2]],
      );
      const bodies = (await all).map((r) => JSON.parse(r.body));
      assert.deepEqual(bodies[0], { order: 1, attributes: { from: "outbox" } });
      assert.deepEqual(
        origin.requests.filter((r) => r.method === "DELETE").map((r) => r.url),
        ["/outbox/1/", "/outbox/2/"],
      );
      // The DELETEs fail this time: the origin lists the same items again, and nothing is sent twice.
      deletes = 500;
      const again = (await dispatch.recover()) as { ingested: number; deleted: number }[];
      assert.deepEqual([again[0]!.ingested, again[0]!.deleted], [2, 0]);
      const messages = await dispatch.searchMessages({ topic: "orders" });
      assert.equal(messages.messages.length, 3, "each recovered message once");
      origin.answer = () => ({ status: 500 });
      const broken = (await dispatch.recover()) as { error: string | null }[];
      assert.match(broken[0]!.error!, /answered 500/);
      await dispatch.updateTopic(topic.id, { recoveryEnabled: false });
      assert.equal((await dispatch.conveyor.schedules()).filter((s) => s.name === "dispatch.recovery").length, 0);
    });
  });
}
