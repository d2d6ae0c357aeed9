/**
 * Conveyor's own dispatch endpoints (what Postoffice lacked), on SQLite and PostgreSQL: topics and publishers read
 * and changed, a secret rotated, messages searched page by page, a message's deliveries and attempts, the failing
 * list, a retry, a cancel, and the replay of a window; a retry now, and the deliveries counted per state.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { nextAttempt, nextAttempts } from "../dispatch/fixtures/dispatch-node.ts";
import { Receiver } from "../dispatch/fixtures/receiver.ts";
import { type DispatchServer, dispatchServer } from "./dispatch-fixture.ts";

async function withReceiver(t: Parameters<typeof dispatchServer>[0], server: DispatchServer, publisher = {}) {
  const receiver = await new Receiver().start();
  t.after(() => receiver.stop());
  await server.call("POST", "/api/topics", { body: { name: "orders", origin_host: "http://127.0.0.1:9/" } });
  const created = await server.call("POST", "/api/publishers", {
    body: { active: true, topic: "orders", target: receiver.url(), type: "http", ...publisher },
  });
  return { receiver, publisherId: Number(created.headers.get("location")!.split("/").at(-1)), created };
}

for (const store of await testStores("dispatch API")) {
  describe(`dispatch API on ${store}`, () => {
    test("topics and publishers: read, change, disable and enable, rotate the secret", async (t) => {
      const server = await dispatchServer(t, store);
      const { call, dispatch } = server;
      const { receiver, publisherId, created } = await withReceiver(t, server, { secret: true });
      const first = created.body.data.secret as string;
      assert.match(first, /^whsec_/);
      const topic = (await call("GET", "/api/topics/orders")).body.topic;
      assert.deepEqual((await call("GET", `/api/topics/${topic.id}`)).body.topic, topic);
      assert.equal((await call("GET", "/api/topics/nope")).body.error.code, "topic_not_found");
      const patched = await call("PATCH", `/api/topics/${topic.id}`, { body: { origin_host: "http://127.0.0.1:8/" } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal(patched.body.topic.origin_host, "http://127.0.0.1:8/");
      const publisher = (await call("GET", `/api/publishers/${publisherId}`)).body.publisher;
      assert.deepEqual([publisher.topic, publisher.active, publisher.signing.secrets], ["orders", true, 1]);
      assert.equal(JSON.stringify(publisher).includes(first), false, "a publisher never shows its secret");
      assert.equal((await call("GET", `/api/publishers/${publisherId}/secret`)).body.secret, first);
      const disabled = await call("PATCH", `/api/publishers/${publisherId}`, {
        body: { active: false, seconds_timeout: 9 },
      });
      assert.deepEqual(
        [
          disabled.body.publisher.active,
          disabled.body.publisher.seconds_timeout,
          disabled.body.publisher.disabled_reason,
        ],
        [false, 9, "disabled by request"],
      );
      const held = await call("POST", "/api/messages", { body: { topic: "orders", payload: { n: 1 } } });
      assert.equal((await call("GET", `/api/deliveries/${held.body.id[0]}`)).body.delivery.state, "held");
      const rotated = await call("POST", `/api/publishers/${publisherId}/rotate-secret`);
      const second = rotated.body.secret as string;
      assert.equal(rotated.body.publisher.signing.secrets, 2);
      const request = receiver.next();
      const enabled = await call("PATCH", `/api/publishers/${publisherId}`, { body: { active: true } });
      assert.equal(enabled.body.publisher.active, true);
      const received = await request;
      const headers = received.headers as Record<string, string>;
      new Webhook(first).verify(received.body, headers);
      new Webhook(second).verify(received.body, headers);
      const changeType = await call("PATCH", `/api/publishers/${publisherId}`, { body: { type: "amqp" } });
      assert.equal(changeType.status, 400, "a publisher's type stays");
      assert.equal((await dispatch.publisher(publisherId)).type, "http");
    });

    test("messages: search by topic, attribute, words, time and state, a page at a time; a message's detail", async (t) => {
      const server = await dispatchServer(t, store);
      const { call, dispatch, clock } = server;
      const { receiver } = await withReceiver(t, server);
      receiver.answer = (r) => (JSON.parse(r.body).n % 3 === 0 ? { status: 500, body: "no" } : { status: 200 });
      const attempts = nextAttempts(dispatch, 6);
      for (let n = 1; n <= 6; n++) {
        await call("POST", "/api/messages", {
          body: {
            topic: "orders",
            payload: { n, text: `parcel ${n % 2 === 0 ? "even" : "odd"}` },
            attributes: { n: String(n) },
          },
        });
        clock.advance(1000);
      }
      await attempts;
      const pages: number[][] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { messages: { payload: { n: number } }[]; next_cursor: string | null } } = await call(
          "GET",
          `/api/messages?topic=orders&limit=4${cursor === null ? "" : `&cursor=${cursor}`}`,
        );
        pages.push(page.body.messages.map((m) => m.payload.n));
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      assert.deepEqual(pages, [
        [6, 5, 4, 3],
        [2, 1],
      ]);
      const search = async (query: string) =>
        (await call("GET", `/api/messages?${query}`)).body.messages.map((m: { payload: { n: number } }) => m.payload.n);
      assert.deepEqual(await search("q=parcel%20even"), [6, 4, 2]);
      assert.deepEqual(await search("attribute=n%3D5"), [5]);
      assert.deepEqual(await search("state=scheduled"), [6, 3], "their retries wait");
      const from = new Date(clock.now().getTime() - 3500).toISOString();
      assert.deepEqual(await search(`from=${from}`), [6, 5, 4]);
      const id = (await call("GET", "/api/messages?attribute=n%3D3")).body.messages[0].id;
      const detail = await call("GET", `/api/messages/${id}`);
      assert.equal(detail.body.message.attributes.n, "3");
      // The log position it is consistent with, for a page to follow the message's deliveries from.
      assert.equal(typeof detail.body.position.epoch, "string");
      assert.ok(detail.body.position.offset > 0);
      const [delivery] = detail.body.deliveries;
      assert.deepEqual(
        [delivery.state, delivery.attempts, delivery.history[0].status, delivery.history[0].response_body],
        ["scheduled", 1, 500, "no"],
      );
      assert.equal(delivery.history[0].request.headers["message-id"], String(delivery.id));
      assert.equal((await call("GET", "/api/messages/999999")).body.error.code, "message_not_found");
    });

    test("deliveries: the failing list, a cancel, the replay of one, and of a window", async (t) => {
      const server = await dispatchServer(t, store);
      const { call, dispatch, clock } = server;
      const { receiver, publisherId } = await withReceiver(t, server, { max_attempts: 1 });
      receiver.answer = () => ({ status: 500 });
      const failed = nextAttempts(dispatch, 3, (e) => e.outcome === "failed");
      const since = clock.now().toISOString();
      const ids: number[] = [];
      for (const n of [1, 2, 3])
        ids.push((await call("POST", "/api/messages", { body: { topic: "orders", payload: { n } } })).body.id[0]);
      await failed;
      const list = await call("GET", `/api/deliveries?state=failed&publisher=${publisherId}&limit=2`);
      assert.deepEqual(
        list.body.deliveries.map((d: { id: number }) => d.id),
        [ids[2], ids[1]],
      );
      const rest = await call("GET", `/api/deliveries?state=failed&limit=2&cursor=${list.body.next_cursor}`);
      assert.deepEqual(
        rest.body.deliveries.map((d: { id: number }) => d.id),
        [ids[0]],
      );
      receiver.answer = () => ({ status: 200 });
      const replayedOne = nextAttempt(dispatch, (e) => e.delivery.id === ids[0] && e.outcome === "delivered");
      assert.equal((await call("POST", `/api/deliveries/${ids[0]}/replay`)).status, 200);
      await replayedOne;
      const again = await call("POST", `/api/deliveries/${ids[0]}/replay`);
      assert.deepEqual([again.status, again.body.error.code], [409, "invalid_state"]);
      const replayed = Promise.all(
        [ids[1], ids[2]].map((id) => nextAttempt(dispatch, (e) => e.delivery.id === id && e.outcome === "delivered")),
      );
      const replay = await call("POST", `/api/publishers/${publisherId}/replay`, { body: { since } });
      assert.deepEqual(replay.body, { replayed: 2 });
      await replayed;
      await dispatch.updatePublisher(publisherId, { active: false });
      const heldId = (await call("POST", "/api/messages", { body: { topic: "orders", payload: { n: 4 } } })).body.id[0];
      const cancelled = await call("POST", `/api/deliveries/${heldId}/cancel`);
      assert.equal(cancelled.body.delivery.state, "cancelled");
      assert.equal((await call("POST", "/api/deliveries/999999/cancel")).body.error.code, "delivery_not_found");
    });
    test("retry now: a retrying delivery sent at once, no attempt spent; the counts per state and publisher", async (t) => {
      const server = await dispatchServer(t, store);
      const { call, dispatch } = server;
      const { receiver, publisherId } = await withReceiver(t, server);
      receiver.answer = () => ({ status: 500 });
      const retrying = nextAttempts(dispatch, 2, (e) => e.outcome === "retry");
      const ids: number[] = [];
      for (const n of [1, 2])
        ids.push((await call("POST", "/api/messages", { body: { topic: "orders", payload: { n } } })).body.id[0]);
      await retrying;
      const none = { count: 0, more: false };
      const zero = { scheduled: none, pending: none, held: none, failed: none, discarded: none, cancelled: none };
      const counts = await call("GET", "/api/dispatch/counts");
      assert.equal(counts.status, 200, JSON.stringify(counts.body));
      assert.deepEqual(
        [counts.body.limit, counts.body.deliveries, counts.body.publishers],
        [10_000, { ...zero, scheduled: { count: 2, more: false } }, []],
      );
      assert.equal(typeof counts.body.position.offset, "number");
      const perPublisher = await call("GET", "/api/dispatch/counts?publishers=true");
      assert.deepEqual(perPublisher.body.publishers, [
        { id: publisherId, deliveries: { ...zero, scheduled: { count: 2, more: false } } },
      ]);
      assert.equal((await call("GET", "/api/dispatch/counts?publishers=maybe")).status, 400);

      receiver.answer = () => ({ status: 200 });
      const delivered = nextAttempt(dispatch, (e) => e.delivery.id === ids[0] && e.outcome === "delivered");
      const retried = await call("POST", `/api/deliveries/${ids[0]}/retry`);
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      assert.equal(retried.body.delivery.attempts, 1, "no attempt spent by asking");
      await delivered;
      const done = (await call("GET", `/api/deliveries/${ids[0]}`)).body.delivery;
      assert.deepEqual(
        [done.state, done.attempts, done.history.map((a: { status: number }) => a.status)],
        ["delivered", 2, [500, 200]],
      );
      const again = await call("POST", `/api/deliveries/${ids[0]}/retry`);
      assert.deepEqual([again.status, again.body.error.code], [409, "invalid_state"]);
      assert.equal((await call("POST", "/api/deliveries/999999/retry")).body.error.code, "delivery_not_found");
      await dispatch.updatePublisher(publisherId, { active: false });
      const disabled = await call("POST", `/api/deliveries/${ids[1]}/retry`);
      assert.deepEqual([disabled.status, disabled.body.error.code], [409, "invalid_state"]);
      assert.equal((await dispatch.delivery(ids[1]!)).attempts, 1, "a refused retry changes nothing");
      assert.deepEqual((await call("GET", "/api/dispatch/counts")).body.deliveries.scheduled, {
        count: 1,
        more: false,
      });
    });
  });
}
