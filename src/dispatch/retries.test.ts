/**
 * Retries, signatures and idempotency end to end (SQLite and PostgreSQL): 5xx answers retried on the schedule until
 * the attempts run out, timeouts and Retry-After, Standard Webhooks signatures verified by the `standardwebhooks`
 * package across retries and a secret rotation, and an idempotency key that sends a message once. The schedule runs
 * on a ManualClock: hours pass in an instant.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { ConflictError } from "../core/errors.ts";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { nextAttempt, ordersToReceiver } from "./fixtures/dispatch-node.ts";
import { RETRY_SCHEDULE_MS } from "./retry-policy.ts";

for (const store of await testStores("dispatch retries")) {
  describe(`retries on ${store}`, () => {
    test("5xx answers are retried on the schedule, then the delivery fails", async (t) => {
      const { dispatch, receiver, clock } = await ordersToReceiver(t, store);
      receiver.answer = () => ({ status: 502, body: "bad gateway" });
      let attempt = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      const gaps: number[] = [];
      for (let n = 1; n <= RETRY_SCHEDULE_MS.length; n++) {
        const event = await attempt;
        assert.equal(event.delivery.attempts, n);
        if (event.outcome === "failed") break;
        assert.equal(event.outcome, "retry");
        const detail = await dispatch.delivery(deliveryIds[0]!);
        gaps.push(detail.nextAttemptAt!.getTime() - detail.history.at(-1)!.at.getTime());
        attempt = nextAttempt(dispatch);
        clock.set(detail.nextAttemptAt!);
      }
      assert.deepEqual(gaps, RETRY_SCHEDULE_MS.slice(1), "the schedule's delays (jitter pinned at its middle)");
      const failed = await dispatch.delivery(deliveryIds[0]!);
      assert.deepEqual([failed.state, failed.attempts, failed.nextAttemptAt], ["failed", 8, null]);
      assert.equal(failed.lastStatus, 502);
      assert.equal(receiver.requests.length, 8);
      assert.equal(new Set(receiver.requests.map((r) => r.headers["message-id"])).size, 1, "one message-id throughout");
    });

    test("a timeout is retried after at least a minute; Retry-After slows retries down, never speeds them up", async (t) => {
      const { dispatch, receiver, clock } = await ordersToReceiver(t, store, { seconds_timeout: 1 });
      receiver.answer = () => "hang";
      let attempt = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { n: 1 } }]);
      const id = deliveryIds[0]!;
      const gap = async () => {
        const d = await dispatch.delivery(id);
        return d.nextAttemptAt!.getTime() - d.history.at(-1)!.at.getTime();
      };
      const timedOut = await attempt;
      assert.equal(timedOut.error, "no answer within 1000 ms");
      assert.equal(await gap(), 60_000);
      receiver.answer = () => ({ status: 503, headers: { "retry-after": "1200" } });
      attempt = nextAttempt(dispatch);
      clock.advance(60_000);
      assert.equal((await attempt).status, 503);
      assert.equal(await gap(), 1_200_000, "20 minutes asked, more than the schedule's 5");
      receiver.answer = () => ({ status: 429, headers: { "retry-after": "2" } });
      attempt = nextAttempt(dispatch);
      clock.advance(1_200_000);
      await attempt;
      assert.equal(await gap(), RETRY_SCHEDULE_MS[3], "2 s asked, the schedule's 30 minutes kept");
    });

    test("signatures verify with standardwebhooks, the same webhook-id on every retry, across a rotation", async (t) => {
      const { dispatch, receiver, clock, publisherId } = await ordersToReceiver(t, store, { secret: true });
      const first = (await dispatch.publisher(publisherId)).secrets[0]!.secret;
      let answers = 0;
      receiver.answer = () => (answers++ === 0 ? { status: 500 } : { status: 204 });
      const retried = nextAttempt(dispatch);
      const { deliveryIds } = await dispatch.send("orders", [{ payload: { order: 7 }, attributes: { a: "b" } }]);
      await retried;
      const delivered = nextAttempt(dispatch, (e) => e.outcome === "delivered");
      clock.advance(5000);
      await delivered;
      const [one, two] = receiver.requests;
      for (const request of [one!, two!]) {
        assert.deepEqual(new Webhook(first).verify(request.body, request.headers as Record<string, string>), {
          order: 7,
          attributes: { a: "b" },
        });
        assert.equal(request.headers["webhook-id"], `dlv_${deliveryIds[0]}`);
      }
      assert.notEqual(one!.headers["webhook-timestamp"], two!.headers["webhook-timestamp"], "each attempt signs anew");
      const { secret: second } = await dispatch.rotateSecret(publisherId);
      const next = receiver.next();
      await dispatch.send("orders", [{ payload: { order: 8 } }]);
      const rotated = await next;
      const headers = rotated.headers as Record<string, string>;
      assert.equal(headers["webhook-signature"]!.split(" ").length, 2);
      new Webhook(first).verify(rotated.body, headers);
      new Webhook(second).verify(rotated.body, headers);
    });

    test("an idempotency key sends a message once; reused for another message it is refused", async (t) => {
      const { dispatch, receiver } = await ordersToReceiver(t, store);
      const delivered = nextAttempt(dispatch, (e) => e.outcome === "delivered");
      const first = await dispatch.send("orders", [{ payload: { n: 1 } }], { idempotencyKey: "order-1" });
      const again = await dispatch.send("orders", [{ payload: { n: 1 } }], { idempotencyKey: "order-1" });
      assert.deepEqual(again.deliveryIds, first.deliveryIds);
      assert.equal(again.messages[0]!.created, false);
      await delivered;
      await assert.rejects(
        dispatch.send("orders", [{ payload: { n: 2 } }], { idempotencyKey: "order-1" }),
        (error: unknown) => error instanceof ConflictError && error.code === "idempotency_conflict",
      );
      const tasks = await dispatch.conveyor.list({ type: "dispatch.deliver" });
      assert.equal(tasks.tasks.length, 1, "one task, one request");
      assert.equal(receiver.requests.length, 1);
    });
  });
}
