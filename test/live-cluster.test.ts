/**
 * The live stream across nodes on PostgreSQL (docs/live-protocol.md): every node serves every channel, and a
 * client that moves between nodes with its last offset misses nothing and sees nothing twice. Two in-process nodes
 * on one fresh schema, each with its own store and bus and an HTTP server on loopback, with the LISTEN/NOTIFY bus
 * and with the RabbitMQ bus; their backstop poll is out of the way (a minute), so an event reaches the other node
 * through the bus's doorbell or not at all. The client speaks the WebSocket protocol itself (Node's WebSocket).
 *
 * - An event written on node A (a task enqueued and completed there, and a publish) reaches a client on node B,
 *   with a subscription token minted by node A (the nodes share the live secret).
 * - A client following the whole log (tasks, nodes and the application channels written to) moves A → B → A → B
 *   while both nodes publish and enqueue continuously; its offsets, compared with the log read afterwards, are
 *   dense and each comes once, in order.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { describe, test, type TestContext } from "node:test";
import amqp from "amqplib";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { buildServer } from "../src/http/server.ts";
import { Conveyor } from "../src/runtime/conveyor.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "./support/postgres.ts";
import { amqpAvailable, amqpUrl, requireService } from "./support/services.ts";

const SECRET = "live-cluster-secret-0123456789";
const WAIT_MS = 15_000;
/** Events the moving client takes from one node before it moves to the other. */
const EVENTS_PER_HOP = 150;
const HOPS = 3;

type Frame = Record<string, any>;

type Node = { name: string; conveyor: Conveyor; app: FastifyInstance; url: string };

/** One WebSocket connection speaking the live protocol: frames in arrival order, and waits on them. */
class Wire {
  readonly frames: Frame[] = [];
  /** Called with every event frame, until it is set to null. */
  onEvent: ((frame: Frame) => void) | null = null;
  readonly #socket: WebSocket;
  #waiters = new Set<() => void>();
  #closed: Promise<void>;

  private constructor(url: string) {
    this.#socket = new WebSocket(url);
    this.#closed = new Promise((resolve) => this.#socket.addEventListener("close", () => resolve()));
    this.#socket.addEventListener("message", (message) => {
      const frame = JSON.parse(String(message.data)) as Frame;
      this.frames.push(frame);
      if (frame.type === "event") this.onEvent?.(frame);
      for (const waiter of this.#waiters) waiter();
    });
    this.#socket.addEventListener("close", () => {
      for (const waiter of this.#waiters) waiter();
    });
  }

  static async open(url: string): Promise<Wire> {
    const wire = new Wire(url);
    await wire.until("welcome", (frame) => frame.type === "welcome");
    return wire;
  }

  send(frame: Frame): void {
    this.#socket.send(JSON.stringify(frame));
  }

  /** The first frame (already here or to come) that passes `test`. */
  until(what: string, test: (frame: Frame) => boolean, timeoutMs = WAIT_MS): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const frame = this.frames.find(test);
        if (frame !== undefined) return done(() => resolve(frame));
        if (this.#socket.readyState >= 2) done(() => reject(new Error(`the connection closed before ${what}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        settle();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Subscribes and waits for the answer; refusals throw. */
  async subscribe(id: string, channels: string[], extra: Frame = {}): Promise<Frame> {
    this.send({ type: "subscribe", id, channels, ...extra });
    const answer = await this.until(`the answer to ${id}`, (f) => f.id === id && /subscribed|error/.test(f.type));
    if (answer.type === "error") throw new Error(`subscribe ${id} refused: ${answer.code} ${answer.message}`);
    return answer;
  }

  async close(): Promise<void> {
    this.onEvent = null;
    this.#socket.close();
    await this.#closed;
  }
}

async function deleteExchange(exchange: string): Promise<void> {
  const connection = await amqp.connect(amqpUrl(), { timeout: 3000 });
  try {
    const channel = await connection.createChannel();
    await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

const BUSES = {
  "LISTEN/NOTIFY": { amqp: false },
  RabbitMQ: { amqp: true },
} as const;

for (const [busName, { amqp: useAmqp }] of Object.entries(BUSES)) {
  describe(`the live stream on two nodes (PostgreSQL, bus ${busName})`, () => {
    /** Two started nodes with HTTP servers on one fresh schema, stopped and dropped when the test ends; null: skip. */
    async function cluster(t: TestContext): Promise<[Node, Node] | null> {
      if (!(await requirePostgres(t))) return null;
      if (useAmqp && !requireService(t, "RabbitMQ", await amqpAvailable())) return null;
      const schema = freshSchema("live_cluster");
      const nodes: Node[] = [];
      t.after(async () => {
        for (const node of nodes.reverse()) {
          await node.app.close();
          await node.conveyor.stop();
        }
        await dropSchema(schema);
        if (useAmqp) await deleteExchange(`conveyor.${schema}`).catch(() => {});
      });
      for (const name of ["A", "B"]) {
        const conveyor = new Conveyor({
          database: postgresUrl(),
          schema,
          ...(useAmqp ? { amqp: amqpUrl() } : {}),
          nodeName: name,
          liveSecret: SECRET,
          pollIntervalMs: 60_000,
          shutdownGraceMs: 500,
          logger: pino({ level: "silent" }),
        });
        conveyor.define("echo", (data) => data);
        await conveyor.start();
        const app = await buildServer({ conveyor });
        nodes.push({ name, conveyor, app, url: "" });
        await app.listen({ host: "127.0.0.1", port: 0 });
        nodes.at(-1)!.url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/live`;
      }
      return nodes as [Node, Node];
    }

    test("an event written on node A reaches a client connected to node B", async (t) => {
      const nodes = await cluster(t);
      if (nodes === null) return;
      const [a, b] = nodes;
      const wire = await Wire.open(b.url);
      t.after(() => wire.close());
      const token = a.conveyor.live.token({ channels: ["room:*"], ttlMs: 60_000 });
      await wire.subscribe("s", ["tasks", "room:7"], { token });

      const task = await a.conveyor.enqueue("echo", { hello: "B" });
      assert.deepEqual(await a.conveyor.result(task.id), { hello: "B" });
      assert.equal((await a.conveyor.get(task.id))?.node, a.conveyor.nodeId, "the task ran on node A");
      await a.conveyor.publish("room:7", { from: "A" });

      const message = await wire.until("the message", (f) => f.type === "event" && f.name === "message");
      assert.deepEqual([message.channel, message.data], ["room:7", { from: "A" }]);
      const names = wire.frames.filter((f) => f.type === "event" && f.taskId === task.id).map((f) => f.name);
      assert.deepEqual(names, ["task.created", "task.started", "task.completed"]);
      const offsets = wire.frames.filter((f) => f.type === "event").map((f) => f.offset as number);
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
        "in offset order",
      );
    });

    test("a client moving between the nodes mid-burst with its last offset misses nothing, sees nothing twice", async (t) => {
      const nodes = await cluster(t);
      if (nodes === null) return;
      const channels = ["tasks", "nodes", "stats", "burst:A", "burst:B"];
      const token = nodes[0].conveyor.live.token({ channels: ["burst:*"], ttlMs: 60_000 });
      const seen: number[] = [];
      let completed = 0;
      const record = (frame: Frame) => {
        seen.push(frame.offset);
        if (frame.name === "task.completed") completed++;
      };
      let hops = 0;
      let wire = await Wire.open(nodes[0].url);
      t.after(() => wire.close());
      // Before the subscribe: the replayed events follow its answer at once, in the same read from the socket.
      wire.onEvent = record;
      const answer = await wire.subscribe("all", channels, { token });
      const { epoch, offset: start } = answer as { epoch: string; offset: number };

      // Both nodes write, several writers each, until the client has made its hops and heard a while after.
      let writing = true;
      let enqueued = 0;
      const writers: Promise<void>[] = [];
      for (const node of nodes) {
        for (let w = 0; w < 2; w++) {
          writers.push(
            (async () => {
              for (let i = 0; writing; i++) await node.conveyor.publish(`burst:${node.name}`, { w, i });
            })(),
          );
        }
        writers.push(
          (async () => {
            for (let i = 0; writing; i++) {
              await node.conveyor.enqueueMany([
                { type: "echo", data: { i } },
                { type: "echo", data: { i, j: 1 } },
              ]);
              enqueued += 2;
            }
          })(),
        );
      }
      const written = Promise.all(writers);
      try {
        // A → B → A → B, each time after EVENTS_PER_HOP events, resuming from the last offset received (events still
        // on their way from the node left behind are dropped, as when a connection breaks).
        for (let next = 1; hops < HOPS; next = 1 - next) {
          const target = seen.length + EVENTS_PER_HOP;
          await wire.until(`${EVENTS_PER_HOP} events`, () => seen.length >= target);
          wire.onEvent = null;
          const since = { epoch, offset: seen.at(-1)! };
          await wire.close();
          wire = await Wire.open(nodes[next]!.url);
          wire.onEvent = record;
          const resumed = await wire.subscribe("all", channels, { token, since });
          assert.equal(resumed.recovered, true, `move ${hops + 1} resumed: ${JSON.stringify({ resumed, since })}`);
          hops++;
        }
        const target = seen.length + EVENTS_PER_HOP;
        await wire.until("events after the last move", () => seen.length >= target);
      } finally {
        writing = false;
        await written;
      }
      // Every task enqueued has run (the client saw it complete); then it catches up with the whole log.
      await wire.until(`${enqueued} tasks completed`, () => completed >= enqueued);
      const [a] = nodes;
      const last = await a.conveyor.store.eventLastOffset();
      await wire.until(`the event at ${last}`, () => (seen.at(-1) ?? 0) >= last);

      const log = await a.conveyor.store.eventList({ after: start, limit: 1_000_000 });
      const expected = log.map((event) => event.offset);
      assert.deepEqual(
        expected,
        Array.from({ length: last - start }, (_, i) => start + 1 + i),
        "the log's offsets are dense",
      );
      assert.equal(seen.length, expected.length, "as many events as the log has");
      assert.deepEqual(seen, expected, "every offset once, in order, across 3 moves between nodes");
      assert.ok(log.some((e) => e.type === "task.completed"));
      t.diagnostic(`${seen.length} events, ${hops} moves`);
    });
  });
}
