import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_HEARTBEAT_S, withDefaultHeartbeat } from "./amqp-heartbeat.ts";

test("an AMQP URL without a heartbeat gets the default; one with a heartbeat (0 included) keeps it", () => {
  assert.equal(DEFAULT_HEARTBEAT_S, 5);
  assert.equal(
    withDefaultHeartbeat("amqp://guest:guest@127.0.0.1:5672"),
    "amqp://guest:guest@127.0.0.1:5672?heartbeat=5",
  );
  assert.equal(withDefaultHeartbeat("amqp://127.0.0.1"), "amqp://127.0.0.1?heartbeat=5");
  // Credentials, the vhost and other parameters pass through as written.
  assert.equal(
    withDefaultHeartbeat("amqps://u:p%40ss@broker:5671/%2Fjobs?frameMax=8192"),
    "amqps://u:p%40ss@broker:5671/%2Fjobs?frameMax=8192&heartbeat=5",
  );
  assert.equal(withDefaultHeartbeat("amqp://127.0.0.1?heartbeat=30"), "amqp://127.0.0.1?heartbeat=30");
  assert.equal(withDefaultHeartbeat("amqp://127.0.0.1?heartbeat=0"), "amqp://127.0.0.1?heartbeat=0");
  // Not a URL: left for amqplib to refuse in its own words.
  assert.equal(withDefaultHeartbeat("not a url"), "not a url");
});
