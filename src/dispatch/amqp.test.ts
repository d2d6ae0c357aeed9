/**
 * AMQP publishers against the real RabbitMQ: messages land in a durable queue, confirmed, with the delivery's id as
 * message id and the attributes as headers; an unroutable message is a failed attempt, not a silent drop; and a
 * broker restart in the middle of a run loses nothing (what was not confirmed is sent again on the retry schedule,
 * which the test's clock runs through). The node's own bus is the in-process one: only dispatch meets the restart.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import amqp from "amqplib";
import { run } from "../../test/cluster/harness.ts";
import { amqpAvailable, amqpUrl, requireService } from "../../test/support/services.ts";
import { dispatchNode, nextAttempt, nextAttempts } from "./fixtures/dispatch-node.ts";

/** A durable exchange and a durable queue bound to it for routing key "orders"; deleted when the test ends. */
async function declare(
  t: TestContext,
): Promise<{ exchange: string; queue: string; read: () => Promise<amqp.Message[]> }> {
  const suffix = randomBytes(4).toString("hex");
  const exchange = `conveyor.test.dispatch.${suffix}`;
  const queue = `conveyor.test.dispatch.${suffix}`;
  const connection = await amqp.connect(amqpUrl());
  connection.on("error", () => {});
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, "direct", { durable: true });
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, "orders");
  await connection.close();
  t.after(async () => {
    const cleanup = await amqp.connect(amqpUrl());
    cleanup.on("error", () => {});
    const ch = await cleanup.createChannel();
    await ch.deleteQueue(queue);
    await ch.deleteExchange(exchange);
    await cleanup.close();
  });
  const read = async () => {
    const reader = await amqp.connect(amqpUrl());
    reader.on("error", () => {});
    const ch = await reader.createChannel();
    const messages: amqp.Message[] = [];
    for (;;) {
      const message = await ch.get(queue, { noAck: true });
      if (message === false) break;
      messages.push(message);
    }
    await reader.close();
    return messages;
  };
  return { exchange, queue, read };
}

test("AMQP: messages are published with confirms into a durable queue; an unroutable one is a failed attempt", async (t) => {
  if (!requireService(t, "RabbitMQ", await amqpAvailable())) return;
  const { exchange, read } = await declare(t);
  const { dispatch } = await dispatchNode(t, "sqlite", { amqpUrl: amqpUrl() });
  await dispatch.createTopic({ name: "orders", originHost: "http://127.0.0.1:9/" });
  await dispatch.createPublisher({ topic: "orders", target: exchange, type: "pubsub", active: true });
  const delivered = nextAttempts(dispatch, 3, (e) => e.outcome === "delivered");
  const { deliveryIds } = await dispatch.send(
    "orders",
    [1, 2, 3].map((n) => ({ payload: { n }, attributes: { kind: "k" } })),
  );
  await delivered;
  const messages = await read();
  assert.deepEqual(
    messages.map((m) => [JSON.parse(m.content.toString()), m.properties.messageId, m.properties.headers?.kind]),
    [1, 2, 3].map((n, i) => [{ n, attributes: { kind: "k" } }, `dlv_${deliveryIds[i]}`, "k"]),
  );
  assert.ok(
    messages.every((m) => m.properties.deliveryMode === 2),
    "persistent",
  );
  await dispatch.createTopic({ name: "nowhere", originHost: "http://127.0.0.1:9/" });
  await dispatch.createPublisher({ topic: "nowhere", target: exchange, type: "amqp", active: true });
  const unroutable = nextAttempt(dispatch);
  await dispatch.send("nowhere", [{ payload: { n: 4 } }]);
  const attempt = await unroutable;
  assert.equal(attempt.outcome, "retry");
  assert.match(attempt.error!, /no queue is bound/);
});

test("AMQP: a broker restart in the middle of a run loses nothing", { timeout: 180_000 }, async (t) => {
  if (!requireService(t, "RabbitMQ", await amqpAvailable())) return;
  const { exchange, read } = await declare(t);
  const { dispatch, clock } = await dispatchNode(t, "sqlite", { amqpUrl: amqpUrl(), conveyor: { concurrency: 10 } });
  await dispatch.createTopic({ name: "orders", originHost: "http://127.0.0.1:9/" });
  await dispatch.createPublisher({ topic: "orders", target: exchange, type: "amqp", active: true, seconds_timeout: 2 });
  const sent: number[] = [];
  const delivered = new Set<number>();
  dispatch.events.on("delivery:attempted", (e) => {
    if (e.outcome === "delivered") delivered.add(e.delivery.id);
  });
  const send = async (from: number) => {
    const batch = Array.from({ length: 10 }, (_, i) => ({ payload: { n: from + i } }));
    sent.push(...(await dispatch.send("orders", batch)).deliveryIds);
    // A steady stream of messages (SQLite answers without I/O: the pause also lets the node's sockets run).
    await new Promise((resolve) => setTimeout(resolve, 50));
  };
  const someDelivered = nextAttempts(dispatch, 20, (e) => e.outcome === "delivered", 30_000);
  for (let n = 0; n < 100; n += 10) await send(n);
  await someDelivered;
  // Messages keep coming while the broker stops, is down, and starts again.
  const firstFailure = nextAttempt(dispatch, (e) => e.outcome === "retry", 60_000);
  let failed = false;
  void firstFailure.then(() => (failed = true)).catch(() => {});
  const stopping = run("rabbitmqctl", ["stop_app"]);
  try {
    for (let n = 100; !failed && n < 100_000; n += 10) await send(n);
    for (let n = 0; n < 50; n += 10) await send(1000 + n);
    await stopping;
    t.diagnostic(`the broker stopped; an attempt failed: ${(await firstFailure).error}`);
  } finally {
    await stopping.catch(() => {});
    await run("rabbitmqctl", ["start_app"]);
    await run("rabbitmqctl", ["await_startup"]);
  }
  for (let n = 0; n < 50; n += 10) await send(2000 + n);
  // Run the retry schedule forward until every delivery is delivered: let the deliveries with a task finish, then
  // move the clock to make the waiting ones due (the retry timer gives them tasks), and again.
  const count = async (state: "pending" | "scheduled") =>
    (await dispatch.deliveries({ state, limit: 1 })).deliveries.length;
  for (let step = 0; step < 50 && delivered.size < sent.length; step++) {
    while ((await count("pending")) > 0) await nextAttempt(dispatch, () => true, 30_000);
    if (delivered.size === sent.length || (await count("scheduled")) === 0) break;
    const attempted = nextAttempt(dispatch, () => true, 30_000);
    clock.advance(10 * 60_000);
    await attempted;
  }
  assert.equal(delivered.size, sent.length, "every delivery was delivered");
  for (const state of ["scheduled", "pending", "failed"] as const)
    assert.equal((await dispatch.deliveries({ state, limit: 500 })).deliveries.length, 0, `no delivery ${state}`);
  const ids = new Set((await read()).map((m) => m.properties.messageId));
  const missing = sent.filter((id) => !ids.has(`dlv_${id}`));
  assert.deepEqual(missing, [], "every delivery is in the queue");
  t.diagnostic(`${sent.length} messages, every one in the queue`);
});
