/**
 * The RabbitMQ contract (A.6) spoken directly with amqplib, as the seed's own processes would: this file plays an
 * original worker against our engine, and an original engine against our worker. Names, exchange and queue
 * arguments (an original peer declares them too: any mismatch would be a PRECONDITION_FAILED), the `type`
 * property, the `all` RPC with `reply_to` and `correlation_id`, the fanout of every event, and messages that are
 * not what they should be.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from "amqplib";
import {
  BROADCASTS_EXCHANGE,
  BROADCASTS_ROUTING_KEY,
  HEADER_OFFSET,
  REQUESTS_EXCHANGE,
  REQUESTS_QUEUE,
} from "./amqp.ts";
import type { RunningTodo } from "./app.ts";
import {
  instance,
  type Logged,
  fileVhost,
  removeFileVhost,
  PhoenixClient,
  removeDir,
  requireBroker,
  tempDir,
  type Vhost,
  vhostsAvailable,
  WAIT_MS,
} from "./todo-fixture.ts";

/** A queue's messages as they come, with a wait for the next ones. */
class Inbox {
  readonly messages: ConsumeMessage[] = [];
  #wake: (() => void) | null = null;
  push(message: ConsumeMessage): void {
    this.messages.push(message);
    this.#wake?.();
  }
  async count(n: number, what: string): Promise<ConsumeMessage[]> {
    const deadline = Date.now() + WAIT_MS;
    while (this.messages.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${this.messages.length}/${n})`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200).unref();
      });
    }
    return this.messages.slice(0, n);
  }
  bodies(): unknown[] {
    return this.messages.map((m) => JSON.parse(m.content.toString()));
  }
}

/** The seed's declarations (Elixir amqp 0.3: non-durable exchanges and queue, exclusive server-named queues). */
async function declareAsSeed(channel: Channel): Promise<void> {
  await channel.assertExchange(REQUESTS_EXCHANGE, "direct", { durable: false });
  await channel.assertQueue(REQUESTS_QUEUE, { durable: false });
  await channel.bindQueue(REQUESTS_QUEUE, REQUESTS_EXCHANGE, REQUESTS_QUEUE);
  await channel.assertExchange(BROADCASTS_EXCHANGE, "fanout", { durable: false });
}

after(() => removeFileVhost());

describe("our engine, and an original worker speaking the seed's protocol", () => {
  let vhost: Vhost | null = null;
  let engine: RunningTodo & { logs: Logged };
  let dir: string;
  let connection: ChannelModel;
  let channel: Channel;
  const fanout = new Inbox();
  const replies = new Inbox();
  let replyQueue: string;

  before(async () => {
    if (!(await vhostsAvailable())) return;
    vhost = await fileVhost();
    dir = tempDir();
    engine = await instance({ mode: "engine", amqpUrl: vhost.url, database: `${dir}/ztd.db` });
    connection = await amqp.connect(vhost.url);
    channel = await connection.createChannel();
    await declareAsSeed(channel);
    const { queue } = await channel.assertQueue("", { exclusive: true });
    await channel.bindQueue(queue, BROADCASTS_EXCHANGE, "");
    await channel.consume(queue, (m) => m && fanout.push(m), { noAck: true });
    replyQueue = (await channel.assertQueue("", { exclusive: true })).queue;
    await channel.consume(replyQueue, (m) => m && replies.push(m), { noAck: true });
  });
  after(async () => {
    await connection?.close().catch(() => {});
    await engine?.stop();
    if (dir) removeDir(dir);
  });

  const dispatch = (body: string, type: string | null = "event") =>
    channel.publish(REQUESTS_EXCHANGE, REQUESTS_QUEUE, Buffer.from(body), type === null ? {} : { type });
  const rpc = (body: string, correlationId: string) =>
    channel.publish(REQUESTS_EXCHANGE, REQUESTS_QUEUE, Buffer.from(body), {
      type: "rpc",
      replyTo: replyQueue,
      correlationId,
    });

  it("applies dispatched events and broadcasts each on the fanout (Event JSON, no other key)", async (t) => {
    if (!(await requireBroker(t))) return;
    const browser = await PhoenixClient.open(engine.url);
    await browser.join();
    dispatch(JSON.stringify({ type: "insert", data: { title: "Done 1", done: true } }));
    dispatch(JSON.stringify({ type: "insert", data: { title: "" } })); // invalid: nothing broadcast
    dispatch(JSON.stringify({ type: "insert", data: { title: "Pending 1" } }));
    const [first, second] = await fanout.count(2, "two broadcasts");
    const a = JSON.parse(first!.content.toString());
    const b = JSON.parse(second!.content.toString());
    assert.deepEqual(a, { type: "insert", data: { id: a.data.id, title: "Done 1", done: true } });
    assert.deepEqual(b, { type: "insert", data: { id: b.data.id, title: "Pending 1", done: false } });
    // As the seed's Broadcaster: routing key ztd.todo.broadcasts.routing, no `type` property.
    assert.equal(first!.fields.routingKey, BROADCASTS_ROUTING_KEY);
    assert.equal(first!.properties.type, undefined);
    // Conveyor's addition, ignored by an original worker: the log position in headers.
    assert.equal(typeof first!.properties.headers?.[HEADER_OFFSET], "number");
    dispatch(JSON.stringify({ type: "update", data: { id: a.data.id, title: "Done 1!", done: false } }));
    dispatch(JSON.stringify({ type: "delete", data: { id: b.data.id } }));
    const all = await fanout.count(4, "four broadcasts");
    assert.deepEqual(JSON.parse(all[2]!.content.toString()), {
      type: "update",
      data: { id: a.data.id, title: "Done 1!", done: false },
    });
    assert.deepEqual(JSON.parse(all[3]!.content.toString()), { type: "delete", data: { id: b.data.id } });
    // Every event of the Phoenix channel had its fanout copy, in the same order.
    await browser.until(() => browser.events().length === 4, "four events on the channel");
    assert.deepEqual(browser.events(), fanout.bodies());
    browser.close();
  });

  it("answers the `all` RPC with the list in creation order and the same correlation_id", async (t) => {
    if (!(await requireBroker(t))) return;
    const correlationId = Buffer.from("-576460752303423480").toString("base64");
    rpc("all", correlationId);
    const [reply] = await replies.count(1, "the all reply");
    assert.equal(reply!.properties.correlationId, correlationId);
    assert.equal(reply!.fields.exchange, "");
    const items = JSON.parse(reply!.content.toString());
    assert.deepEqual(
      items.map((i: { title: string }) => i.title),
      ["Done 1!"],
    );
    assert.deepEqual(Object.keys(items[0]), ["id", "title", "done"]);
  });

  it("drops what is not a request without harm: unknown type, no type, bad JSON, unknown command", async (t) => {
    if (!(await requireBroker(t))) return;
    const before = fanout.messages.length;
    dispatch(JSON.stringify({ type: "insert", data: { title: "x" } }), "bogus");
    dispatch(JSON.stringify({ type: "insert", data: { title: "x" } }), null);
    dispatch("1,2,3");
    dispatch(JSON.stringify({ type: "invalid", data: {} }));
    dispatch(JSON.stringify({ type: "update", data: { id: "nope" } }));
    rpc("everything", "Zm9v");
    // Then a good one: the next broadcast is its, and the next reply is the `all` (the unknown command got none).
    dispatch(JSON.stringify({ type: "insert", data: { title: "after the bad ones" } }));
    rpc("all", "YmFy");
    const broadcasts = await fanout.count(before + 1, "the good broadcast");
    assert.equal(JSON.parse(broadcasts[before]!.content.toString()).data.title, "after the bad ones");
    const [, second] = await replies.count(2, "the second reply");
    assert.equal(second!.properties.correlationId, "YmFy");
    assert.equal(replies.messages.length, 2);
    assert.ok(engine.logs.some((l) => l.message.includes("Unknown Message Type")));
  });

  it("answers a change sent with reply_to and message_id, once however often it comes", async (t) => {
    if (!(await requireBroker(t))) return;
    const before = fanout.messages.length;
    const properties = { type: "event", replyTo: replyQueue, correlationId: "change-1", messageId: "change-1" };
    const body = Buffer.from(JSON.stringify({ type: "insert", data: { title: "once" } }));
    channel.publish(REQUESTS_EXCHANGE, REQUESTS_QUEUE, body, properties);
    channel.publish(REQUESTS_EXCHANGE, REQUESTS_QUEUE, body, properties);
    const answers = await replies.count(4, "two answers");
    const [a, b] = answers.slice(2).map((m) => JSON.parse(m.content.toString()));
    assert.equal(a.status, "ok");
    assert.deepEqual(a, b);
    rpc("all", "YmF6");
    const all = JSON.parse((await replies.count(5, "all"))[4]!.content.toString());
    assert.equal(all.filter((i: { title: string }) => i.title === "once").length, 1);
    assert.equal(fanout.messages.length, before + 1);
  });
});

describe("our worker, and an original engine speaking the seed's protocol", () => {
  let vhost: Vhost | null = null;
  let worker: RunningTodo & { logs: Logged };
  let connection: ChannelModel;
  let channel: Channel;
  const items: { id: string; title: string; done: boolean }[] = [
    { id: "6f1c1a52-5e4d-4a63-9a43-0c6f2f1b3a01", title: "from the original", done: false },
  ];
  const received: ConsumeMessage[] = [];

  before(async () => {
    if (!(await vhostsAvailable())) return;
    vhost = await fileVhost();
    connection = await amqp.connect(vhost.url);
    channel = await connection.createChannel();
    await declareAsSeed(channel);
    // The original engine's Listener: no_ack; `all` answered with the plain list, events applied and broadcast.
    await channel.consume(
      REQUESTS_QUEUE,
      (message) => {
        if (message === null) return;
        received.push(message);
        if (message.properties.type === "rpc" && message.content.toString() === "all") {
          channel.publish("", message.properties.replyTo, Buffer.from(JSON.stringify(items)), {
            correlationId: message.properties.correlationId,
          });
        } else if (message.properties.type === "event") {
          const event = JSON.parse(message.content.toString());
          const data =
            event.type === "insert" ? { id: crypto.randomUUID(), title: event.data.title, done: false } : event.data;
          channel.publish(
            BROADCASTS_EXCHANGE,
            BROADCASTS_ROUTING_KEY,
            Buffer.from(JSON.stringify({ type: event.type, data })),
          );
        }
      },
      { noAck: true },
    );
    worker = await instance({ mode: "worker", amqpUrl: vhost.url });
  });
  after(async () => {
    await worker?.stop();
    await connection?.close().catch(() => {});
  });

  it("serves the page from the `all` RPC, relays pushes as Event messages and broadcasts as events", async (t) => {
    if (!(await requireBroker(t))) return;
    const html = await (await fetch(`${worker.url}/`)).text();
    assert.match(html, /from the original/);
    assert.match(html, /&quot;mode&quot;:&quot;worker&quot;/);
    const rpc = received.find((m) => m.properties.type === "rpc")!;
    assert.equal(rpc.content.toString(), "all");
    assert.match(rpc.properties.correlationId, /^[A-Za-z0-9+/]+=*$/);
    const browser = await PhoenixClient.open(worker.url);
    await browser.join();
    const reply = await browser.push("insert", { data: { title: "via our worker" } });
    assert.equal(reply.payload.status, "ok");
    await browser.until(() => browser.events().length === 1, "the original engine's broadcast");
    assert.equal(browser.events()[0].data.title, "via our worker");
    const event = received.find((m) => m.properties.type === "event")!;
    assert.equal(event.fields.exchange, REQUESTS_EXCHANGE);
    assert.equal(event.fields.routingKey, REQUESTS_QUEUE);
    assert.deepEqual(JSON.parse(event.content.toString()), { type: "insert", data: { title: "via our worker" } });
    browser.close();
  });

  it("a page on it: 503 (not a crash) when the engine does not answer within 2 s", async (t) => {
    if (!(await requireBroker(t))) return;
    await channel.close();
    const started = Date.now();
    const response = await fetch(`${worker.url}/`);
    assert.equal(response.status, 503);
    assert.ok(Date.now() - started >= 1900, "after the seed's 2 s RPC timeout");
    assert.match(await response.text(), /did not answer/);
    assert.equal((await fetch(`${worker.url}/nope`)).status, 404, "the worker goes on serving");
  });
});
