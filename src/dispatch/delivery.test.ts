/**
 * Delivery end to end against a local receiver, on SQLite and PostgreSQL: what is sent, a receiver that is down then
 * up, 410, disabled and deleted publishers, per-publisher concurrency, and the live events of it all. Time is a
 * ManualClock the tests move; they wait on the dispatch's events and the receiver's requests, never on sleeps.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LogEvent } from "../core/task.ts";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { nextAttempt, ordersToReceiver } from "./fixtures/dispatch-node.ts";

for (const store of await testStores("dispatch delivery")) {
  describe(`delivery on ${store}`, () => {
    test("a message is POSTed with its attributes merged in and a message-id; the attempt is recorded", async (t) => {
      const { dispatch, receiver, dialled } = await ordersToReceiver(t, store);
      const delivered = nextAttempt(dispatch, (e) => e.outcome === "delivered");
      const request = receiver.next();
      const sent = await dispatch.send("orders", [
        { payload: { order: 1, lines: [1, 2] }, attributes: { kind: "new" } },
      ]);
      const [id] = sent.deliveryIds;
      const received = await request;
      assert.deepEqual(JSON.parse(received.body), { order: 1, lines: [1, 2], attributes: { kind: "new" } });
      assert.equal(received.headers["content-type"], "application/json");
      assert.equal(received.headers["message-id"], String(id));
      assert.equal(received.headers["webhook-signature"], undefined, "no secret, no signature");
      await delivered;
      const detail = await dispatch.delivery(id!);
      assert.equal(detail.state, "delivered");
      assert.equal(detail.attempts, 1);
      assert.deepEqual(
        detail.history.map((a) => [a.attempt, a.status, a.outcome]),
        [[1, 200, "delivered"]],
      );
      assert.equal(detail.history[0]!.request.headers["message-id"], String(id));
      assert.equal(detail.history[0]!.responseBody, "ok");
      const task = await dispatch.conveyor.waitForFinish(detail.history[0]!.taskId!, 5000);
      assert.deepEqual([task?.type, task?.state], ["dispatch.deliver", "completed"]);
      assert.deepEqual(dialled, []);
    });

    test("receiver down, then up: the delivery waits for its retry and goes out", async (t) => {
      const { dispatch, receiver, clock } = await ordersToReceiver(t, store, {}, { receiverDown: true });
      const failed = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      const first = await failed;
      assert.equal(first.outcome, "retry");
      assert.match(first.error!, /ECONNREFUSED/);
      const waiting = await dispatch.delivery(deliveryIds[0]!);
      assert.equal(waiting.state, "scheduled");
      assert.equal(waiting.nextAttemptAt!.getTime() - waiting.history[0]!.at.getTime(), 5000);
      await receiver.start();
      const delivered = nextAttempt(dispatch, (e) => e.outcome === "delivered");
      clock.advance(5000);
      assert.equal((await delivered).delivery.attempts, 2);
      assert.equal(receiver.requests.length, 1);
    });

    test("410 disables the publisher and holds its deliveries; enabling it sends them", async (t) => {
      const { dispatch, receiver, publisherId } = await ordersToReceiver(t, store);
      receiver.answer = () => ({ status: 410, body: "gone" });
      const gone = nextAttempt(dispatch);
      const first = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      assert.equal((await gone).outcome, "gone");
      const publisher = await dispatch.publisher(publisherId);
      assert.equal(publisher.active, false);
      assert.match(publisher.disabledReason!, /410 Gone/);
      assert.equal((await dispatch.delivery(first.deliveryIds[0]!)).state, "held");
      const second = await dispatch.send("orders", [{ payload: { n: 2 } }]);
      assert.deepEqual(
        second.messages[0]!.deliveries.map((d) => d.state),
        ["held"],
        "held at once: no task, no attempt",
      );
      receiver.answer = () => ({ status: 200 });
      const both = Promise.all([
        nextAttempt(dispatch, (e) => e.delivery.id === first.deliveryIds[0] && e.outcome === "delivered"),
        nextAttempt(dispatch, (e) => e.delivery.id === second.deliveryIds[0] && e.outcome === "delivered"),
      ]);
      await dispatch.updatePublisher(publisherId, { active: true });
      const [a, b] = await both;
      assert.deepEqual([a.delivery.attempts, b.delivery.attempts], [2, 1]);
      assert.equal((await dispatch.publisher(publisherId)).disabledReason, null);
    });

    test("a disabled publisher holds deliveries without spending attempts, even one waiting for its retry", async (t) => {
      const { dispatch, receiver, clock, publisherId } = await ordersToReceiver(t, store);
      receiver.answer = () => ({ status: 500 });
      const failed = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      assert.equal((await failed).outcome, "retry");
      await dispatch.updatePublisher(publisherId, { active: false });
      const settled = new Promise((resolve) => dispatch.events.once("delivery:settled", resolve));
      clock.advance(5000);
      await settled;
      const held = await dispatch.delivery(deliveryIds[0]!);
      assert.deepEqual([held.state, held.attempts], ["held", 1]);
      const more = await dispatch.send("orders", [{ payload: { n: 2 } }, { payload: { n: 3 } }]);
      assert.deepEqual(
        more.messages.map((m) => m.deliveries[0]!.state),
        ["held", "held"],
      );
      receiver.answer = () => ({ status: 200 });
      const all = Promise.all(
        [...deliveryIds, ...more.deliveryIds].map((id) =>
          nextAttempt(dispatch, (e) => e.delivery.id === id && e.outcome === "delivered"),
        ),
      );
      await dispatch.updatePublisher(publisherId, { active: true });
      const attempts = (await all).map((e) => e.delivery.attempts);
      assert.deepEqual(attempts, [2, 1, 1], "holding spent nothing");
      assert.equal(receiver.requests.length, 1 + 3);
    });

    test("a deleted publisher's waiting deliveries are discarded, and new messages get none", async (t) => {
      const { dispatch, receiver, publisherId } = await ordersToReceiver(t, store);
      receiver.answer = () => ({ status: 503 });
      const failed = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      await failed;
      await dispatch.deletePublisher(publisherId);
      const discarded = await dispatch.delivery(deliveryIds[0]!);
      assert.deepEqual([discarded.state, discarded.publisher.deleted], ["discarded", true]);
      const after = await dispatch.send("orders", [{ payload: { n: 2 } }]);
      assert.deepEqual(after.deliveryIds, []);
    });

    test("a publisher's concurrency bounds its attempts in flight on a node", async (t) => {
      const { dispatch, receiver } = await ordersToReceiver(t, store, { concurrency: 1 });
      let inFlight = 0;
      let most = 0;
      receiver.answer = () => {
        most = Math.max(most, ++inFlight);
        setTimeout(() => inFlight--, 40);
        return { status: 200, delayMs: 40 };
      };
      const ids = (
        await dispatch.send(
          "orders",
          [1, 2, 3, 4].map((n) => ({ payload: { n } })),
        )
      ).deliveryIds;
      await Promise.all(
        ids.map((id) => nextAttempt(dispatch, (e) => e.delivery.id === id && e.outcome === "delivered")),
      );
      assert.equal(most, 1);
    });

    test("deliveries and attempts are events on topic:<name> and on dispatch", async (t) => {
      const { dispatch } = await ordersToReceiver(t, store);
      const onTopic: LogEvent[] = [];
      const onDispatch: LogEvent[] = [];
      const since = await dispatch.conveyor.live.position();
      const a = await dispatch.conveyor.subscribe(["topic:orders"], { since }, (e) => onTopic.push(e));
      const b = await dispatch.conveyor.subscribe(["dispatch"], { since }, (e) => onDispatch.push(e));
      t.after(() => {
        a.close();
        b.close();
      });
      const attempted = new Promise<void>((resolve) => {
        const subscription = dispatch.conveyor.subscribe(["topic:orders"], { since }, (e) => {
          if (e.type === "delivery.attempted") resolve();
        });
        t.after(async () => (await subscription).close());
      });
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      await attempted;
      assert.deepEqual(
        onTopic.map((e) => e.type),
        ["dispatch.received", "delivery.attempted"],
      );
      assert.deepEqual(onTopic.at(-1)!.data, {
        ...(onTopic.at(-1)!.data as object),
        delivery: deliveryIds[0],
        outcome: "delivered",
        state: "delivered",
        status: 200,
        topic: "orders",
      });
      assert.deepEqual(
        onDispatch.map((e) => e.offset),
        onTopic.map((e) => e.offset),
        "dispatch hears every topic's events",
      );
    });
  });
}
