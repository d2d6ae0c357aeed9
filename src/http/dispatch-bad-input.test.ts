/**
 * Bad input on every dispatch endpoint, on SQLite and PostgreSQL: Postoffice's paths answer with the seed's codes
 * and `{"data":{"errors":…}}` bodies, Conveyor's with `{"error":{"code",…}}` (docs/errors.md); none is a 500, and
 * none writes anything: topics, publishers, messages and deliveries are the same after as before.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { type DispatchServer, dispatchServer } from "./dispatch-fixture.ts";
import type { CallInit } from "./server-fixture.ts";

type Case = [method: string, path: string, init: CallInit, status: number, expected: unknown];

const INVALID = ["is invalid"];
const BLANK = ["can't be blank"];
const fields = (errors: Record<string, string[]>) => ({ data: { errors } });
/** A Conveyor error body with this code (the message is for people). */
const code = (name: string) => ({ code: name });

/** Everything dispatch holds, to compare before and after. */
async function snapshot({ dispatch }: DispatchServer): Promise<string> {
  const states = ["scheduled", "pending", "held", "failed", "discarded", "cancelled"] as const;
  const deliveries = await Promise.all(states.map((state) => dispatch.deliveries({ state, limit: 500 })));
  return JSON.stringify({
    topics: await dispatch.topics(),
    publishers: await dispatch.publishers({ includeDeleted: true }),
    messages: (await dispatch.searchMessages({ limit: 500 })).messages,
    deliveries: deliveries.map((page) => page.deliveries.map((d) => [d.id, d.state, d.attempts])),
  });
}

for (const store of await testStores("dispatch bad input")) {
  describe(`dispatch bad input on ${store}`, () => {
    test("every endpoint refuses bad input with its codes and shape, and writes nothing", async (t) => {
      const server = await dispatchServer(t, store);
      const { call, dispatch } = server;
      await dispatch.createTopic({ name: "orders", originHost: "http://origin.test/" });
      const publisher = await dispatch.createPublisher({ topic: "orders", target: "http://a.test/", type: "http" });
      const [held] = (await dispatch.send("orders", [{ payload: { n: 1 } }])).deliveryIds;
      const p = publisher.id;
      const long = "x".repeat(300);
      const cases: Case[] = [
        ["POST", "/api/topics", { raw: "{not json", headers: { "content-type": "application/json" } }, 400, "shape"],
        ["POST", "/api/topics", { raw: "name=a", headers: { "content-type": "text/plain" } }, 415, "shape"],
        ["POST", "/api/topics", { body: [] }, 400, fields({ body: INVALID })],
        ["POST", "/api/topics", { body: {} }, 400, fields({ name: BLANK, origin_host: BLANK })],
        ["POST", "/api/topics", { body: { name: 5, origin_host: "h" } }, 400, fields({ name: INVALID })],
        ["POST", "/api/topics", { body: { name: long, origin_host: "h" } }, 400, fields({ name: INVALID })],
        [
          "POST",
          "/api/topics",
          { body: { name: "n", origin_host: "h", recovery_enabled: "yes" } },
          400,
          fields({ recovery_enabled: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "ftp://a.test/", type: "http" } },
          400,
          fields({ target: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/" } },
          400,
          fields({ type: BLANK }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", seconds_timeout: 0 } },
          400,
          fields({ seconds_timeout: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", seconds_retry: "soon" } },
          400,
          fields({ seconds_retry: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", active: "maybe" } },
          400,
          fields({ active: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", chunk_size: -1 } },
          400,
          fields({ chunk_size: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", secret: "hunter2" } },
          400,
          fields({ secret: INVALID }),
        ],
        [
          "POST",
          "/api/publishers",
          { body: { topic: "orders", target: "http://b.test/", type: "http", retry_mode: "often" } },
          400,
          fields({ retry_mode: INVALID }),
        ],
        ["DELETE", "/api/publishers/-1", {}, 400, { data: { errors: "Anything has wrong" } }],
        ["DELETE", "/api/publishers/1.5", {}, 400, { data: { errors: "Anything has wrong" } }],
        ["DELETE", "/api/publishers/99999999999999999999", {}, 400, { data: { errors: "Anything has wrong" } }],
        ["POST", "/api/messages", { body: { topic: "orders", payload: "text" } }, 400, fields({ payload: INVALID })],
        ["POST", "/api/messages", { body: { topic: "orders" } }, 400, fields({ payload: BLANK })],
        [
          "POST",
          "/api/messages",
          { body: { topic: "orders", payload: {}, attributes: [] } },
          400,
          fields({ attributes: INVALID }),
        ],
        ["POST", "/api/messages", { body: { topic: 5, payload: {} } }, 400, fields({ topic: INVALID })],
        ["POST", "/api/messages", { raw: "[1,", headers: { "content-type": "application/json" } }, 400, "shape"],
        ["POST", "/api/bulk_messages", { body: { topic: "orders", payload: {} } }, 400, fields({ payload: INVALID })],
        ["POST", "/api/bulk_messages", { body: { topic: "orders", payload: [] } }, 400, fields({ payload: INVALID })],
        [
          "POST",
          "/api/bulk_messages",
          { body: { topic: "orders", payload: [{ n: 1 }, 2] } },
          400,
          fields({ payload: INVALID }),
        ],
        [
          "POST",
          "/api/bulk_messages",
          { body: { topic: "orders", payload: [{ n: 1 }], attributes: "a" } },
          400,
          fields({ attributes: INVALID }),
        ],
        [
          "POST",
          "/api/schedule_messages",
          { body: { topic: "orders", payload: {}, schedule_at: "2100-01-01" } },
          400,
          fields({ schedule_at: INVALID }),
        ],
        ["GET", `/api/topics/${long}`, {}, 400, code("validation_failed")],
        ["PATCH", "/api/topics/orders", { body: {} }, 400, code("validation_failed")],
        ["PATCH", "/api/topics/orders", { body: { origin_host: 5 } }, 400, code("validation_failed")],
        ["PATCH", "/api/topics/orders", { body: { name: "renamed" } }, 400, code("validation_failed")],
        ["PATCH", "/api/topics/nope", { body: { recovery_enabled: true } }, 404, code("topic_not_found")],
        ["GET", "/api/publishers/abc", {}, 400, code("validation_failed")],
        ["GET", "/api/publishers/0", {}, 400, code("validation_failed")],
        ["GET", "/api/publishers/999999", {}, 404, code("publisher_not_found")],
        ["GET", "/api/publishers?topic=nope", {}, 404, code("topic_not_found")],
        ["GET", "/api/publishers?deleted=maybe", {}, 400, code("validation_failed")],
        ["GET", "/api/publishers?bogus=1", {}, 400, code("validation_failed")],
        ["PATCH", `/api/publishers/${p}`, { body: {} }, 400, code("validation_failed")],
        ["PATCH", `/api/publishers/${p}`, { body: { active: "yes" } }, 400, code("validation_failed")],
        [
          "PATCH",
          `/api/publishers/${p}`,
          { body: { target: "not a url", active: false } },
          400,
          code("validation_failed"),
        ],
        ["PATCH", `/api/publishers/${p}`, { body: { seconds_timeout: 0 } }, 400, code("validation_failed")],
        ["PATCH", `/api/publishers/${p}`, { body: { type: "amqp" } }, 400, code("validation_failed")],
        ["PATCH", "/api/publishers/999999", { body: { active: true } }, 404, code("publisher_not_found")],
        ["POST", `/api/publishers/${p}/rotate-secret`, { body: { secret: "bad" } }, 400, code("validation_failed")],
        ["POST", `/api/publishers/${p}/rotate-secret`, { body: { bogus: 1 } }, 400, code("validation_failed")],
        ["POST", "/api/publishers/999999/rotate-secret", {}, 404, code("publisher_not_found")],
        ["POST", `/api/publishers/${p}/replay`, { body: {} }, 400, code("validation_failed")],
        ["POST", `/api/publishers/${p}/replay`, { body: { since: "yesterday" } }, 400, code("validation_failed")],
        [
          "POST",
          `/api/publishers/${p}/replay`,
          { body: { since: "2030-01-02T00:00:00Z", until: "2030-01-01T00:00:00Z" } },
          400,
          code("validation_failed"),
        ],
        [
          "POST",
          "/api/publishers/999999/replay",
          { body: { since: "2020-01-01T00:00:00Z" } },
          404,
          code("publisher_not_found"),
        ],
        ["GET", "/api/messages?state=bogus", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?limit=0", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?limit=501", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?cursor=nonsense", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?from=someday", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?attribute=novalue", {}, 400, code("validation_failed")],
        ["GET", "/api/messages?topic=nope", {}, 404, code("topic_not_found")],
        ["GET", "/api/messages?unknown=1", {}, 400, code("validation_failed")],
        ["GET", "/api/messages/abc", {}, 400, code("validation_failed")],
        ["GET", "/api/messages/999999", {}, 404, code("message_not_found")],
        ["GET", "/api/deliveries", {}, 400, code("validation_failed")],
        ["GET", "/api/deliveries?state=delivered", {}, 400, code("validation_failed")],
        ["GET", "/api/deliveries?state=failed&publisher=abc", {}, 400, code("validation_failed")],
        ["GET", "/api/deliveries/abc", {}, 400, code("validation_failed")],
        ["GET", "/api/deliveries/999999", {}, 404, code("delivery_not_found")],
        ["POST", "/api/deliveries/999999/replay", {}, 404, code("delivery_not_found")],
        ["POST", `/api/deliveries/${held}/replay`, {}, 409, code("invalid_state")],
        ["POST", "/api/deliveries/0/cancel", {}, 400, code("validation_failed")],
        ["POST", "/api/deliveries/abc/retry", {}, 400, code("validation_failed")],
        ["POST", "/api/deliveries/999999/retry", {}, 404, code("delivery_not_found")],
        ["POST", `/api/deliveries/${held}/retry`, {}, 409, code("invalid_state")],
        ["GET", "/api/dispatch/counts?publishers=1", {}, 400, code("validation_failed")],
        ["GET", "/api/dispatch/counts?state=failed", {}, 400, code("validation_failed")],
      ];
      const before = await snapshot(server);
      for (const [method, path, init, status, expected] of cases) {
        const reply = await call(method, path, init);
        const what = `${method} ${path.slice(0, 80)} ${JSON.stringify(init.body ?? init.raw)}`;
        assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
        if (expected === "shape") assert.equal(typeof reply.body.data.errors, "string", what);
        else if ("code" in (expected as object))
          assert.equal(reply.body.error?.code, (expected as { code: string }).code, what);
        else assert.deepEqual(reply.body, expected, what);
      }
      assert.equal(await snapshot(server), before, "nothing was written");
    });

    test("library calls with text no store keeps (a NUL, a lone surrogate) get a ValidationError and write nothing", async (t) => {
      const server = await dispatchServer(t, store);
      const { dispatch } = server;
      const topic = await dispatch.createTopic({ name: "orders", originHost: "http://origin.test/" });
      await dispatch.createPublisher({ topic: "orders", target: "http://a.test/", type: "http" });
      const before = await snapshot(server);
      const calls: [string, () => Promise<unknown>][] = [
        ["topic name", () => dispatch.createTopic({ name: "a\u0000b", originHost: "http://o.test/" })],
        ["origin host", () => dispatch.createTopic({ name: "x", originHost: "http://o.test/\ud800" })],
        ["topic change", () => dispatch.updateTopic(topic.id, { originHost: "http://o.test/\u0000" })],
        [
          "publisher topic",
          () => dispatch.createPublisher({ topic: "or\u0000ders", target: "http://a.test/", type: "http" }),
        ],
        [
          "publisher target",
          () => dispatch.createPublisher({ topic: "orders", target: "http://a.test/\u0000", type: "http" }),
        ],
        ["payload", () => dispatch.send("orders", [{ payload: { text: "a\u0000b" } }])],
        ["payload key", () => dispatch.send("orders", [{ payload: { "\ud800": 1 } }])],
        ["attributes", () => dispatch.send("orders", [{ payload: {}, attributes: { a: "\u0000" } }])],
        ["send's topic", () => dispatch.send("ord\u0000ers", [{ payload: {} }])],
        ["idempotency key", () => dispatch.send("orders", [{ payload: {} }], { idempotencyKey: "k\u0000" })],
      ];
      for (const [what, call] of calls)
        await assert.rejects(call, (error: Error) => error.name === "ValidationError", `${what}: a ValidationError`);
      await assert.rejects(
        () => dispatch.topic("a\u0000b"),
        (error: Error) => error.name === "NotFoundError",
      );
      assert.equal(await snapshot(server), before, "nothing was written");
    });
  });
}
