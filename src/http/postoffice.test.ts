/**
 * Postoffice's API cases (CONTRACTS §D.11), codes and bodies, on SQLite and PostgreSQL: what a Postoffice client
 * sends and reads must not change. Where Postoffice was broken (schedule_at without a zone) it answers 400.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { testStores } from "../runtime/fixtures/test-node.ts";
import { dispatchServer } from "./dispatch-fixture.ts";

const ORIGIN = "http://origin.test/outbox/";

for (const store of await testStores("postoffice API")) {
  describe(`Postoffice API on ${store}`, () => {
    test("topics: 201 with id and name; blank fields 400; a taken name 409", async (t) => {
      const { call } = await dispatchServer(t, store);
      const created = await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body, { data: { id: created.body.data.id, name: "test" } });
      assert.ok(Number.isInteger(created.body.data.id));
      const blankName = await call("POST", "/api/topics", { body: { name: "", origin_host: ORIGIN } });
      assert.deepEqual([blankName.status, blankName.body], [400, { data: { errors: { name: ["can't be blank"] } } }]);
      const blankHost = await call("POST", "/api/topics", { body: { name: "other" } });
      assert.deepEqual(
        [blankHost.status, blankHost.body],
        [400, { data: { errors: { origin_host: ["can't be blank"] } } }],
      );
      const taken = await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      assert.deepEqual([taken.status, taken.body], [409, { data: { errors: { name: ["has already been taken"] } } }]);
      const recovery = await call("POST", "/api/topics", {
        body: { name: "with-recovery", origin_host: ORIGIN, recovery_enabled: true },
      });
      assert.equal(recovery.status, 201);
      const listed = await call("GET", "/api/topics");
      assert.deepEqual(
        listed.body.topics.map((topic: { name: string; recovery_enabled: boolean }) => [
          topic.name,
          topic.recovery_enabled,
        ]),
        [
          ["test", false],
          ["with-recovery", true],
        ],
      );
    });

    test("publishers: http and pubsub with timeout and retry 201 {data: {}}; unknown topic, bad type, blank target 400; taken 409", async (t) => {
      const { call, dispatch } = await dispatchServer(t, store);
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      const http = {
        active: true,
        topic: "test",
        target: "http://fake.target/",
        type: "http",
        seconds_timeout: 10,
        seconds_retry: 60,
      };
      const created = await call("POST", "/api/publishers", { body: http });
      assert.deepEqual([created.status, created.body], [201, { data: {} }]);
      const pubsub = await call("POST", "/api/publishers", {
        body: { active: false, topic: "test", target: "test-exchange", type: "pubsub", chunk_size: 20, from_now: true },
      });
      assert.deepEqual([pubsub.status, pubsub.body], [201, { data: {} }]);
      const stored = await dispatch.publishers({ topic: "test" });
      assert.deepEqual(
        stored.map((p) => [p.type, p.target, p.active, p.secondsTimeout, p.secondsRetry, p.chunkSize]),
        [
          ["http", "http://fake.target/", true, 10, 60, null],
          ["amqp", "test-exchange", false, 5, 30, 20],
        ],
      );
      const unknownTopic = await call("POST", "/api/publishers", { body: { ...http, topic: "nope" } });
      assert.deepEqual(
        [unknownTopic.status, unknownTopic.body],
        [400, { data: { errors: { topic: ["is invalid"] } } }],
      );
      const badType = await call("POST", "/api/publishers", { body: { ...http, type: "carrier-pigeon" } });
      assert.deepEqual([badType.status, badType.body], [400, { data: { errors: { type: ["is invalid"] } } }]);
      const blankTarget = await call("POST", "/api/publishers", { body: { ...http, target: "" } });
      assert.deepEqual(
        [blankTarget.status, blankTarget.body],
        [400, { data: { errors: { target: ["can't be blank"] } } }],
      );
      const taken = await call("POST", "/api/publishers", { body: http });
      assert.deepEqual([taken.status, taken.body], [409, { data: { errors: { target: ["has already been taken"] } } }]);
      assert.equal((await dispatch.publishers({})).length, 2, "nothing more was written");
    });

    test("publisher delete: 204, soft-deleted and announced; a missing one 400 'Anything has wrong'", async (t) => {
      const { call, dispatch } = await dispatchServer(t, store);
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      const created = await call("POST", "/api/publishers", {
        body: { active: true, topic: "test", target: "http://fake.target/", type: "http" },
      });
      const id = Number(created.headers.get("location")!.split("/").at(-1));
      const since = await dispatch.conveyor.live.position();
      const deleted = await call("DELETE", `/api/publishers/${id}`);
      assert.deepEqual([deleted.status, deleted.body], [204, ""]);
      assert.equal((await dispatch.publisher(id)).deleted, true);
      const events = await dispatch.conveyor.store.eventList({ after: since.offset, limit: 10 });
      assert.deepEqual(
        events.map((e) => [e.type, e.channel, (e.data as { change: string }).change]),
        [["publisher.changed", "topic:test", "deleted"]],
      );
      for (const path of ["/api/publishers/999", "/api/publishers/abc", "/api/publishers/0"]) {
        const missing = await call("DELETE", path);
        assert.deepEqual([missing.status, missing.body], [400, { data: { errors: "Anything has wrong" } }], path);
      }
    });

    test("messages: 201 {id: [...]}, one id per undeleted publisher, [] with none; unknown topic 400", async (t) => {
      const { call } = await dispatchServer(t, store);
      await call("POST", "/api/topics", { body: { name: "empty", origin_host: ORIGIN } });
      const none = await call("POST", "/api/messages", { body: { topic: "empty", payload: { a: 1 }, attributes: {} } });
      assert.deepEqual([none.status, none.body], [201, { id: [] }]);
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      for (const [target, active] of [
        ["http://a.target/", true],
        ["http://b.target/", false],
        ["http://c.target/", true],
      ] as const)
        await call("POST", "/api/publishers", { body: { active, topic: "test", target, type: "http" } });
      const publishers = (await call("GET", "/api/publishers?topic=test")).body.publishers;
      await call("DELETE", `/api/publishers/${publishers[2].id}`);
      const sent = await call("POST", "/api/messages", {
        body: { topic: "test", payload: { order: 1 }, attributes: { kind: "new" } },
      });
      assert.equal(sent.status, 201);
      assert.deepEqual(Object.keys(sent.body), ["id"], "no data wrapper");
      assert.equal(sent.body.id.length, 2, "the active and the inactive publisher; not the deleted one");
      const unknown = await call("POST", "/api/messages", { body: { topic: "nope", payload: {}, attributes: {} } });
      assert.deepEqual([unknown.status, unknown.body], [400, { data: { errors: { topic: ["is invalid"] } } }]);
    });

    test("bulk: 201 {result: [...]} for every payload and publisher; unknown topic 406; over the limit 406 and nothing written", async (t) => {
      const { call, dispatch } = await dispatchServer(t, store, { maxBulkMessages: 3 });
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      for (const target of ["http://a.target/", "http://b.target/"])
        await call("POST", "/api/publishers", { body: { active: true, topic: "test", target, type: "http" } });
      const bulk = await call("POST", "/api/bulk_messages", {
        body: { topic: "test", attributes: { batch: "1" }, payload: [{ n: 1 }, { n: 2 }] },
      });
      assert.equal(bulk.status, 201);
      assert.equal(bulk.body.result.length, 4);
      const unknown = await call("POST", "/api/bulk_messages", {
        body: { topic: "nope", attributes: {}, payload: [{}] },
      });
      assert.deepEqual([unknown.status, unknown.body], [406, { data: { errors: "Topic does not exist" } }]);
      const over = await call("POST", "/api/bulk_messages", {
        body: { topic: "test", attributes: {}, payload: [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }] },
      });
      assert.deepEqual([over.status, over.body], [406, { data: { errors: "Exceed max messages to ingest in bulk" } }]);
      assert.equal((await dispatch.searchMessages({ topic: "test" })).messages.length, 2);
    });

    test("scheduled messages: 201 {id: [...]}, delivered at schedule_at exactly; no time zone or unknown topic 400", async (t) => {
      const { call, dispatch } = await dispatchServer(t, store);
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      await call("POST", "/api/publishers", {
        body: { active: true, topic: "test", target: "http://a.target/", type: "http" },
      });
      const at = "2100-09-22T08:18:23.387Z";
      const scheduled = await call("POST", "/api/schedule_messages", {
        body: { topic: "test", payload: { n: 1 }, attributes: {}, schedule_at: at },
      });
      assert.equal(scheduled.status, 201);
      const delivery = await dispatch.delivery(scheduled.body.id[0]);
      assert.deepEqual([delivery.state, delivery.nextAttemptAt?.toISOString()], ["scheduled", at]);
      for (const bad of ["2100-09-22T08:18:23.387", "tomorrow", 42, undefined]) {
        const reply = await call("POST", "/api/schedule_messages", {
          body: { topic: "test", payload: { n: 1 }, attributes: {}, schedule_at: bad },
        });
        assert.deepEqual(
          [reply.status, reply.body],
          [400, { data: { errors: { schedule_at: ["is invalid"] } } }],
          String(bad),
        );
      }
      const unknown = await call("POST", "/api/schedule_messages", {
        body: { topic: "nope", payload: {}, attributes: {}, schedule_at: at },
      });
      assert.deepEqual([unknown.status, unknown.body], [400, { data: { errors: { topic: ["is invalid"] } } }]);
    });

    test("health: 200 {status: ok}; Idempotency-Key answers the first call again", async (t) => {
      const { call, dispatch } = await dispatchServer(t, store);
      const health = await call("GET", "/api/health");
      assert.deepEqual(
        [health.status, health.body.status, health.body.bus.ok, health.body.store.ok],
        [200, "ok", true, true],
      );
      await call("POST", "/api/topics", { body: { name: "test", origin_host: ORIGIN } });
      await call("POST", "/api/publishers", {
        body: { active: false, topic: "test", target: "http://a.target/", type: "http" },
      });
      const headers = { "idempotency-key": "order-42" };
      const body = { topic: "test", payload: { order: 42 }, attributes: {} };
      const first = await call("POST", "/api/messages", { body, headers });
      const again = await call("POST", "/api/messages", { body, headers });
      assert.deepEqual([again.status, again.body], [201, first.body]);
      const other = await call("POST", "/api/messages", { body: { ...body, payload: { order: 43 } }, headers });
      assert.deepEqual(
        [other.status, other.body],
        [409, { data: { errors: { idempotency_key: ["has already been taken"] } } }],
      );
      assert.equal((await dispatch.searchMessages({ topic: "test" })).messages.length, 1);
    });
  });
}
