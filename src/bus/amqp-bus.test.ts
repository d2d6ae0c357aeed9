import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import amqp from "amqplib";
import { amqpAvailable, amqpUrl, requireService } from "../../test/support/services.ts";
import { AmqpBus } from "./amqp-bus.ts";
import {
  Inbox,
  isWake,
  nextReconnect,
  record,
  remoteBusCases,
  settle,
  started,
  uniqueName,
} from "./remote-bus-cases.ts";

const run = promisify(execFile);

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run("rabbitmqctl", args, { timeout: 60_000 });
  return stdout;
}

remoteBusCases({
  name: "AmqpBus",
  available: async (t) => requireService(t, "RabbitMQ", await amqpAvailable()),
  create: (exchange) => new AmqpBus({ url: amqpUrl(), exchange }),
  standalone: (exchange) => ({
    module: new URL("./amqp-bus.ts", import.meta.url).href,
    exportName: "AmqpBus",
    options: { url: amqpUrl(), exchange },
  }),
  maxPayloadBytes: 1024 * 1024,
  async raw(exchange) {
    const connection = await amqp.connect(amqpUrl());
    connection.on("error", () => {});
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, "fanout", { durable: false });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, "");
    const payloads = new Inbox<string>();
    await channel.consume(
      queue,
      (message) => {
        if (message !== null) payloads.push(message.content.toString("utf8"));
      },
      { noAck: true },
    );
    return {
      payloads,
      async close() {
        await channel.deleteExchange(exchange).catch(() => {});
        await connection.close();
      },
    };
  },
});

test("AmqpBus: rejects a bad exchange name", () => {
  for (const exchange of ["", "amq.fanout", "has space", "x".repeat(256), "é"]) {
    assert.throws(() => new AmqpBus({ url: amqpUrl(), exchange }), TypeError, exchange);
  }
  assert.equal(new AmqpBus({ url: amqpUrl() }).exchange, "conveyor.bus");
});

test("AmqpBus: start() rejects when the broker cannot be reached, and leaves nothing open", async () => {
  const bus = new AmqpBus({ url: "amqp://guest:guest@127.0.0.1:1" });
  await assert.rejects(bus.start(), /ECONNREFUSED/);
  assert.equal(bus.connected, false);
  await bus.close();
});

/** The broker-side pid of the connection named conveyor-bus-<origin>, as rabbitmqctl close_connection wants it. */
async function connectionPid(bus: AmqpBus): Promise<string> {
  const lines = (await rabbitmqctl("list_connections", "pid", "client_properties", "-q")).split("\n");
  const line = lines.find((l) => l.includes(`"conveyor-bus-${bus.origin}"`));
  assert.ok(line, `no broker connection named conveyor-bus-${bus.origin}`);
  return line.split("\t")[0]!;
}

test("AmqpBus: a connection closed by the broker is reopened with a new queue, and messages flow again", {
  timeout: 60_000,
}, async (t) => {
  if (!requireService(t, "RabbitMQ", await amqpAvailable())) return;
  const exchange = uniqueName("conveyor.t");
  const a = await started(t, new AmqpBus({ url: amqpUrl(), exchange }));
  const b = await started(t, new AmqpBus({ url: amqpUrl(), exchange }));
  const [aIn, bIn] = [record(a), record(b)];
  const oldQueue = a.queue;

  const reconnected = nextReconnect(a, "A's reconnect");
  await rabbitmqctl("close_connection", await connectionPid(a), "conveyor test: forced close");
  a.publish("wake", { queue: "while-down" }); // must not throw
  const info = await reconnected;
  t.diagnostic(`reconnected ${info.downMs} ms after the broker closed the connection (${info.attempts} attempt(s))`);
  assert.notEqual(a.queue, oldQueue, "a new server-named queue");
  await aIn.waitFor("the synthetic events {} after the reconnect", ([c]) => c === "events");

  a.publish("wake", { queue: "after-recovery" });
  await bIn.waitFor("A's message on B after recovery", isWake("after-recovery"));
  await settle(a, aIn, b, bIn);
  assert.equal(aIn.count(isWake("after-recovery")), 1, "no echo on A");
});

test("AmqpBus: both nodes recover from a broker restart (stop_app / start_app)", { timeout: 120_000 }, async (t) => {
  if (!requireService(t, "RabbitMQ", await amqpAvailable())) return;
  const exchange = uniqueName("conveyor.t");
  const a = await started(t, new AmqpBus({ url: amqpUrl(), exchange }));
  const b = await started(t, new AmqpBus({ url: amqpUrl(), exchange }));
  const [aIn, bIn] = [record(a), record(b)];
  let stopped = false;
  t.after(async () => {
    if (!stopped) return;
    await rabbitmqctl("start_app").catch((error: unknown) => console.error("could not start RabbitMQ again:", error));
    await rabbitmqctl("await_startup").catch(() => {});
  });

  const reconnected = Promise.all([
    nextReconnect(a, "A's reconnect", 90_000),
    nextReconnect(b, "B's reconnect", 90_000),
  ]);
  stopped = true;
  await rabbitmqctl("stop_app");
  a.publish("wake", { queue: "while-down" }); // must not throw; B never hears it, A does locally
  await aIn.waitFor("local delivery while the broker is down", isWake("while-down"));
  const startedAt = Date.now();
  await rabbitmqctl("start_app");
  await rabbitmqctl("await_startup");
  stopped = false;
  const readyAt = Date.now();
  const [ra, rb] = await reconnected;
  t.diagnostic(
    `start_app + await_startup took ${readyAt - startedAt} ms; both reconnected ${Date.now() - readyAt} ms after the broker was up ` +
      `(A down ${ra.downMs} ms, ${ra.attempts} attempts; B down ${rb.downMs} ms, ${rb.attempts} attempts)`,
  );

  a.publish("wake", { queue: "a-after-restart" });
  await bIn.waitFor("A's message on B after the restart", isWake("a-after-restart"));
  b.publish("cancel", { id: 99 });
  await aIn.waitFor(
    "B's message on A after the restart",
    ([c, m]) => c === "cancel" && (m as { id: number }).id === 99,
  );
  await settle(a, aIn, b, bIn);
  assert.equal(aIn.count(isWake("a-after-restart")), 1, "no echo on A");
  assert.equal(bIn.count(isWake("while-down")), 0);
});
