/**
 * The live stream on one node, over its real transports (WebSocket and SSE on a loopback port), on SQLite and on
 * PostgreSQL: replay from an offset and from a snapshot's position, `recovered: false` for another epoch, an
 * offset beyond the log, a pruned one and a gap past the replay limit; a reconnect in the middle of a burst; a slow
 * consumer cut off while a fast one gets everything; authorisation refusals; malformed frames; SSE resumed by
 * Last-Event-ID; the library's subscribe and stream. Two nodes and concurrent writers are in test/.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { WebSocket as WsSocket } from "ws";
import { signLiveToken } from "../core/live-token.ts";
import { buildServer } from "../http/server.ts";
import { PostgresBus } from "../bus/postgres-bus.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { Conveyor } from "../runtime/conveyor.ts";
import type { ConveyorOptions } from "../runtime/options.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "../../test/support/postgres.ts";

const SECRET = "a-live-secret-of-32-characters!!";
const API_TOKEN = "api-token-for-the-live-tests";

type Frame = Record<string, any>;

/** A WebSocket client that keeps every frame and lets a test wait for the one it expects. */
class Client {
  readonly frames: Frame[] = [];
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }[] = [];

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = () => reject(new Error(`could not connect to ${url}`));
    });
    this.closed = new Promise((resolve) => (this.socket.onclose = (e) => resolve({ code: e.code, reason: e.reason })));
    this.socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data)) as Frame;
      this.frames.push(frame);
      for (const waiter of [...this.#waiters]) {
        if (!waiter.match(frame)) continue;
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    };
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or to come) that matches. */
  next(match: (frame: Frame) => boolean, what = "a frame", timeoutMs = 10_000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const last = () => JSON.stringify(this.frames.slice(-5).map((f) => [f.type, f.id ?? f.sub, f.offset, f.code]));
      const timer = setTimeout(
        () => reject(new Error(`no ${what} within ${timeoutMs} ms; last frames ${last()}`)),
        timeoutMs,
      );
      this.#waiters.push({ match, resolve: (frame) => (clearTimeout(timer), resolve(frame)) });
    });
  }

  events(sub: string): Frame[] {
    return this.frames.filter((f) => f.type === "event" && f.sub === sub);
  }

  /** Waits until subscription `sub` has received `count` events. */
  async eventsOf(sub: string, count: number, timeoutMs = 10_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events(sub).length < count) {
      if (Date.now() > deadline) throw new Error(`${sub} got ${this.events(sub).length} of ${count} events`);
      await this.next(
        (f) => f.type === "event" && f.sub === sub && !this.#counted.has(f),
        "an event",
        deadline - Date.now(),
      ).then((f) => this.#counted.add(f));
    }
    return this.events(sub);
  }
  readonly #counted = new Set<Frame>();

  close(): void {
    this.socket.close();
  }
}

type Node = { conveyor: Conveyor; app: FastifyInstance; base: string; ws: string; close: () => Promise<void> };

type StoreFixture = { options: () => ConveyorOptions; close: () => Promise<void> };

const STORES: Record<string, () => StoreFixture> = {
  sqlite: () => {
    const database = join(mkdtempSync(join(tmpdir(), "conveyor-live-")), "c.db");
    return { options: () => ({ database }), close: async () => {} };
  },
  postgres: () => {
    const schema = freshSchema("live");
    const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 4 });
    const bus = new PostgresBus({ connectionString: postgresUrl(), channel: schema });
    return {
      options: () => ({ store, bus }),
      close: async () => {
        await bus.close();
        await store.close();
        await dropSchema(schema);
      },
    };
  },
};

for (const [storeName, makeStore] of Object.entries(STORES)) {
  describe(`live stream on ${storeName}`, () => {
    async function startNode(
      t: TestContext,
      options: {
        token?: string;
        conveyor?: ConveyorOptions;
        live?: { maxBufferBytes?: number; heartbeatMs?: number };
      } = {},
    ): Promise<Node | null> {
      if (storeName === "postgres" && !(await requirePostgres(t))) return null;
      const store = makeStore();
      const conveyor = new Conveyor({
        ...store.options(),
        logger: pino({ level: "silent" }),
        liveSecret: SECRET,
        shutdownGraceMs: 100,
        ...options.conveyor,
      });
      conveyor.define("echo", (data: unknown) => data);
      const app = await buildServer({ conveyor, token: options.token ?? null, live: options.live });
      await conveyor.start();
      const address = await app.listen({ port: 0, host: "127.0.0.1" });
      const node: Node = {
        conveyor,
        app,
        base: address,
        ws: `${address.replace("http", "ws")}/api/live`,
        close: async () => {
          await app.close();
          await conveyor.stop();
          await store.close();
        },
      };
      t.after(() => node.close());
      return node;
    }

    async function connect(node: Node, query = ""): Promise<Client> {
      const client = new Client(`${node.ws}${query}`);
      await client.opened;
      await client.next((f) => f.type === "welcome", "welcome");
      return client;
    }

    test("replays exactly the events after an offset, then goes live", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const since = await node.conveyor.live.position();
      for (let i = 0; i < 5; i++) await node.conveyor.publish("room:1", { i });
      await node.conveyor.publish("room:2", { other: true });
      const client = await connect(node);
      client.send({ type: "subscribe", id: "s", channels: ["room:1"], since });
      const subscribed = await client.next((f) => f.type === "subscribed");
      assert.deepEqual([subscribed.recovered, subscribed.offset, subscribed.epoch], [true, since.offset, since.epoch]);
      await node.conveyor.publish("room:1", { i: 5 });
      const events = await client.eventsOf("s", 6);
      assert.deepEqual(
        events.map((e) => e.data.i),
        [0, 1, 2, 3, 4, 5],
        "the gap in order, then the live event, and nothing of room:2",
      );
      const offsets = events.map((e) => e.offset);
      assert.deepEqual(
        offsets,
        [...offsets].sort((a, b) => a - b),
      );
      assert.ok(events.every((e) => e.name === "message" && e.channel === "room:1" && typeof e.at === "string"));
      client.close();
    });

    test("a snapshot's position then the stream: the tasks enqueued in between arrive once", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const snapshot = (await (await fetch(`${node.base}/api/tasks`)).json()) as Frame;
      assert.equal(typeof snapshot.position.offset, "number");
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push((await node.conveyor.enqueue("nobody.runs.this")).id);
      const client = await connect(node);
      client.send({ type: "subscribe", id: "t", channels: ["tasks"], since: snapshot.position });
      await client.next((f) => f.type === "subscribed" && f.recovered === true);
      const events = await client.eventsOf("t", 3);
      assert.deepEqual(
        events.map((e) => [e.name, e.taskId]),
        ids.map((id) => ["task.created", id]),
      );
      const task = (await (await fetch(`${node.base}/api/tasks/${ids[0]}`)).json()) as Frame;
      assert.ok(task.position.offset >= events.at(-1)!.offset, "a detail read says its position too");
      client.close();
    });

    test("another epoch, an offset beyond the log, a pruned one, a gap past the limit: recovered false", async (t) => {
      const node = await startNode(t, { conveyor: { liveReplayLimit: 5 } });
      if (node === null) return;
      const start = await node.conveyor.live.position();
      for (let i = 0; i < 8; i++) await node.conveyor.publish("room:r", { i });
      const now = await node.conveyor.live.position();
      const client = await connect(node);
      const ask = async (id: string, since: { epoch: string; offset: number }) => {
        client.send({ type: "subscribe", id, channels: ["room:r"], since });
        return client.next((f) => f.type === "subscribed" && f.id === id);
      };
      const other = await ask("epoch", { epoch: "someotherlog", offset: now.offset });
      assert.deepEqual([other.recovered, other.reason, other.offset], [false, "epoch_changed", now.offset]);
      assert.equal((await ask("ahead", { ...now, offset: now.offset + 10 })).reason, "offset_ahead");
      assert.equal((await ask("far", start)).reason, "gap_too_large", "8 events behind, the limit is 5");
      const near = await ask("near", { ...now, offset: now.offset - 3 });
      assert.equal(near.recovered, true);
      assert.deepEqual(
        (await client.eventsOf("near", 3)).map((e) => e.data.i),
        [5, 6, 7],
      );
      // Pruned: the log keeps its last row only.
      await node.conveyor.store.eventPrune({ before: new Date(Date.now() + 60_000), limit: 1000 });
      const pruned = await ask("pruned", { ...now, offset: now.offset - 3 });
      assert.deepEqual([pruned.recovered, pruned.reason], [false, "offset_pruned"]);
      // Not recovered, the subscription is live from the log's position: new events come.
      await node.conveyor.publish("room:r", { i: 8 });
      assert.deepEqual(
        (await client.eventsOf("pruned", 1)).map((e) => e.data.i),
        [8],
      );
      client.close();
    });

    test("a reconnect in the middle of a burst misses nothing and repeats nothing", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const TOTAL = 300;
      const first = await connect(node);
      first.send({ type: "subscribe", id: "b", channels: ["burst:1"] });
      const subscribed = await first.next((f) => f.type === "subscribed");
      let published = 0;
      const publishing = (async () => {
        for (; published < TOTAL; published++) await node.conveyor.publish("burst:1", { n: published });
      })();
      const before = await first.eventsOf("b", 50);
      first.close();
      await first.closed;
      const last = before.at(-1)!.offset;
      const second = await connect(node);
      second.send({
        type: "subscribe",
        id: "b",
        channels: ["burst:1"],
        since: { epoch: subscribed.epoch, offset: last },
      });
      assert.equal((await second.next((f) => f.type === "subscribed")).recovered, true);
      await publishing;
      const gotFirst = first.events("b").map((e) => e.data.n);
      const after = await second.eventsOf("b", TOTAL - gotFirst.length);
      const all = [...gotFirst, ...after.map((e) => e.data.n)];
      assert.deepEqual(
        all,
        Array.from({ length: TOTAL }, (_, n) => n),
        "every message once, in order",
      );
      second.close();
    });

    test("a slow consumer is cut off with 4008 while a fast one gets everything", async (t) => {
      const node = await startNode(t, { live: { maxBufferBytes: 64 * 1024 } });
      if (node === null) return;
      const fast = await connect(node);
      fast.send({ type: "subscribe", id: "f", channels: ["flood:1"] });
      await fast.next((f) => f.type === "subscribed");
      // A client that stops reading its socket: the server's send buffer fills.
      const slow = new WsSocket(node.ws);
      const slowClosed = new Promise<number>((resolve) => slow.on("close", (code) => resolve(code)));
      const subscribed = new Promise<void>((resolve) =>
        slow.on("message", (data) => {
          const frame = JSON.parse(String(data)) as Frame;
          if (frame.type === "welcome")
            slow.send(JSON.stringify({ type: "subscribe", id: "s", channels: ["flood:1"] }));
          if (frame.type === "subscribed") resolve();
        }),
      );
      await subscribed;
      (slow as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      // More than the kernel's socket buffers on both sides hold (several MiB on loopback), so that what the server
      // cannot send waits in its own buffer.
      const COUNT = 600;
      const payload = "x".repeat(32 * 1024);
      for (let i = 0; i < COUNT; i++) {
        await node.conveyor.publish("flood:1", { i, payload });
        // The fast client reads in this very process: let it (a SQLite write alone never yields to I/O).
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal((await fast.eventsOf("f", COUNT, 30_000)).length, COUNT, "the fast client got every event");
      (slow as unknown as { _socket: { resume(): void } })._socket.resume();
      const timeout = new Promise<string>((resolve) =>
        setTimeout(() => resolve("still open after 10 s"), 10_000).unref(),
      );
      assert.equal(await Promise.race([slowClosed, timeout]), 4008, "the slow client was closed with slow_consumer");
      fast.close();
    });

    test("a replay larger than the send budget reaches a client that reads, at its pace (WebSocket and SSE)", async (t) => {
      const node = await startNode(t, { live: { maxBufferBytes: 64 * 1024 } });
      if (node === null) return;
      const since = await node.conveyor.live.position();
      // 20 MiB behind: more than the kernel's socket buffers hold, 300 times the budget.
      const COUNT = 600;
      const payload = "x".repeat(32 * 1024);
      for (let i = 0; i < COUNT; i++) await node.conveyor.publish("backlog:1", { i, payload });
      const client = await connect(node);
      client.send({ type: "subscribe", id: "b", channels: ["backlog:1"], since });
      await client.next((f) => f.type === "subscribed" && f.recovered === true);
      await node.conveyor.publish("backlog:1", { i: COUNT, payload: "live" });
      const events = await client.eventsOf("b", COUNT + 1, 30_000);
      assert.deepEqual(
        events.map((e) => e.data.i),
        Array.from({ length: COUNT + 1 }, (_, i) => i),
        "the whole replay in order, then the live event",
      );
      const stillOpen = await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, 50, "open"))]);
      assert.equal(stillOpen, "open", "not cut off as a slow consumer");
      client.close();

      const controller = new AbortController();
      const response = await fetch(
        `${node.base}/api/live/sse?channels=backlog:1&since=${since.epoch}:${since.offset}`,
        {
          signal: controller.signal,
        },
      );
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      let messages = 0;
      while (messages < COUNT + 1) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        assert.ok(!text.includes("slow_consumer"), "the SSE stream was not cut off");
        const blocks = text.split("\n\n");
        text = blocks.pop()!;
        messages += blocks.filter((block) => block.includes("event: message")).length;
      }
      controller.abort();
      assert.equal(messages, COUNT + 1, "SSE: the whole replay and the live event");
    });

    test("refusals are error frames with a code; the connection stays usable", async (t) => {
      const node = await startNode(t, { token: API_TOKEN });
      if (node === null) return;
      const client = await connect(node);
      const refuse = async (id: string, channels: string[], token?: string) => {
        client.send({ type: "subscribe", id, channels, ...(token === undefined ? {} : { token }) });
        return (await client.next((f) => f.id === id && (f.type === "error" || f.type === "subscribed"))).code;
      };
      assert.equal(await refuse("a", ["tasks"]), "unauthorized", "task channels need the API token");
      assert.equal(await refuse("b", ["nodes"]), "unauthorized");
      assert.equal(await refuse("c", ["user:1"]), "forbidden", "no token grants user:1");
      const mine = signLiveToken(SECRET, { channels: ["user:1", "download:1:*"], ttlMs: 60_000 });
      assert.equal(await refuse("d", ["user:2"], mine), "forbidden", "another user's channel");
      const expired = signLiveToken(SECRET, { channels: ["user:1"], ttlMs: 1 }, Date.now() - 10_000);
      assert.equal(await refuse("e", ["user:1"], expired), "token_expired");
      const forged = signLiveToken("another-secret-of-32-characters!", { channels: ["user:1"], ttlMs: 60_000 });
      assert.equal(await refuse("f", ["user:1"], forged), "token_signature");
      assert.equal(await refuse("g", ["user:1"], "v1.not-a-token"), "token_malformed");
      assert.equal(
        await refuse("h", ["user:1"], `${mine.slice(0, -4)}AAAA`),
        "token_signature",
        "a tampered signature",
      );
      assert.equal(await refuse("i", ["user:1", "download:1:pdf"], mine), undefined, "granted: subscribed");
      client.send({ type: "publish", ref: 1, channel: "user:1", data: {} });
      assert.equal((await client.next((f) => f.ref === 1)).code, "forbidden", "publishing needs a grant of its own");
      // The API token, given on the connection, opens the system channels.
      client.send({ type: "auth", token: API_TOKEN });
      await client.next((f) => f.type === "authed");
      assert.equal(await refuse("j", ["tasks", "nodes"]), undefined);
      client.close();
      const byQuery = await connect(node, `?token=${API_TOKEN}`);
      byQuery.send({ type: "subscribe", id: "k", channels: ["tasks"] });
      assert.equal((await byQuery.next((f) => f.id === "k")).type, "subscribed");
      byQuery.close();
    });

    test("malformed frames get an error frame, a huge one a close; the server carries on", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const client = await connect(node);
      const answers: Frame[] = [];
      for (const [ref, frame] of [
        ["json", "{not json"],
        ["array", "[1,2]"],
        ["type", JSON.stringify({ type: "dance", ref: "type" })],
        ["sub-id", JSON.stringify({ type: "subscribe", id: "", channels: ["x:1"] })],
        ["channels", JSON.stringify({ type: "subscribe", id: "c", channels: "tasks" })],
        ["since", JSON.stringify({ type: "subscribe", id: "s", channels: ["x:1"], since: { epoch: 3, offset: -1 } })],
      ] as const) {
        client.send(frame);
        answers.push(await client.next((f) => f.type === "error" && !answers.includes(f), ref));
      }
      assert.ok(
        answers.every((f) => f.code === "invalid_frame"),
        JSON.stringify(answers),
      );
      client.send({ type: "subscribe", id: "bad", channels: ["has space"] });
      assert.equal((await client.next((f) => f.id === "bad")).code, "invalid_channel");
      client.send({ type: "subscribe", id: "many", channels: Array.from({ length: 51 }, (_, i) => `x:${i}`) });
      assert.equal((await client.next((f) => f.id === "many")).code, "too_many_channels");
      client.send({ type: "subscribe", id: "dup", channels: ["x:1"] });
      await client.next((f) => f.type === "subscribed" && f.id === "dup");
      client.send({ type: "subscribe", id: "dup", channels: ["x:2"] });
      assert.equal((await client.next((f) => f.type === "error" && f.id === "dup")).code, "duplicate_subscription");
      client.send({ type: "unsubscribe", id: "nope" });
      assert.equal((await client.next((f) => f.id === "nope")).code, "unknown_subscription");
      client.send({ type: "ping", ref: 7 });
      assert.equal((await client.next((f) => f.type === "pong" && f.ref === 7)).type, "pong");
      client.send("x".repeat(65 * 1024));
      assert.equal((await client.closed).code, 1009, "a frame over 64 KiB closes the connection");
      const again = await connect(node);
      again.send({ type: "ping", ref: 8 });
      await again.next((f) => f.type === "pong" && f.ref === 8);
      again.close();
    });

    test("SSE: events with positions as ids, resumed by Last-Event-ID; refusals before the stream", async (t) => {
      const node = await startNode(t, { token: API_TOKEN });
      if (node === null) return;
      const since = await node.conveyor.live.position();
      for (let i = 0; i < 3; i++) await node.conveyor.publish("feed:1", { i });
      const grant = signLiveToken(SECRET, { channels: ["feed:*"], ttlMs: 60_000 });
      const read = async (headers: Record<string, string>, query: string, count: number) => {
        const controller = new AbortController();
        const response = await fetch(`${node.base}/api/live/sse?${query}`, { headers, signal: controller.signal });
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
        const reader = response.body!.getReader();
        let text = "";
        const events: { id: string; event: string; data: any }[] = [];
        while (events.filter((e) => e.event === "message").length < count) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
          const blocks = text.split("\n\n");
          text = blocks.pop()!;
          for (const block of blocks) {
            const fields: Record<string, string> = Object.fromEntries(
              block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
            );
            if (fields.event !== undefined)
              events.push({ id: fields.id ?? "", event: fields.event, data: JSON.parse(fields.data ?? "null") });
          }
        }
        controller.abort();
        return events;
      };
      const first = await read({}, `channels=feed:1&since=${since.epoch}:${since.offset}&token=${grant}`, 3);
      assert.equal(first[0]!.event, "subscribed");
      assert.equal(first[0]!.data.recovered, true);
      const messages = first.filter((e) => e.event === "message");
      assert.deepEqual(
        messages.map((e) => e.data.data.i),
        [0, 1, 2],
      );
      assert.deepEqual(
        messages.map((e) => e.id),
        messages.map((e) => `${since.epoch}:${e.data.offset}`),
      );
      for (let i = 3; i < 5; i++) await node.conveyor.publish("feed:1", { i });
      const resumed = await read(
        { "last-event-id": messages.at(-1)!.id, authorization: `Bearer ${grant}` },
        "channels=feed:1",
        2,
      );
      assert.deepEqual(
        resumed.filter((e) => e.event === "message").map((e) => e.data.data.i),
        [3, 4],
        "from Last-Event-ID on",
      );
      const status = async (query: string) => (await fetch(`${node.base}/api/live/sse?${query}`)).status;
      assert.equal(await status("channels=tasks"), 401, "task channels need the API token");
      assert.equal(await status(`channels=user:9&token=${grant}`), 403, "not granted");
      assert.equal(await status("channels=has%20space"), 400);
      assert.equal(await status("channels=feed:1&since=garbage"), 400);
      assert.equal(await status(""), 400);
    });

    test("a stopping node closes its clients with 1001, so that they reconnect", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const client = await connect(node);
      await node.app.close();
      assert.equal((await client.closed).code, 1001);
    });

    test("the library: subscribe from a position, publish, and stream as an async iterator", async (t) => {
      const node = await startNode(t);
      if (node === null) return;
      const since = await node.conveyor.live.position();
      await node.conveyor.publish("lib:1", { a: 1 });
      const got: unknown[] = [];
      // The callback subscriber and the iterator are fed independently: wait for each on its own.
      const { promise: gotBoth, resolve: gotBothResolve } = Promise.withResolvers<void>();
      const subscription = await node.conveyor.subscribe(["lib:1"], { since }, (event) => {
        got.push(event.data);
        if (got.length === 2) gotBothResolve();
      });
      assert.equal(subscription.recovered, true);
      const iterated: unknown[] = [];
      const controller = new AbortController();
      const streaming = (async () => {
        for await (const event of node.conveyor.live.stream(["lib:1"], { since, signal: controller.signal })) {
          iterated.push(event.data);
          if (iterated.length === 2) controller.abort();
        }
      })();
      await node.conveyor.publish("lib:1", { a: 2 });
      await streaming;
      await gotBoth;
      assert.deepEqual(iterated, [{ a: 1 }, { a: 2 }]);
      assert.deepEqual(got, [{ a: 1 }, { a: 2 }]);
      subscription.close();
      await assert.rejects(node.conveyor.publish("tasks", {}), /not an application channel/);
      await assert.rejects(
        node.conveyor.subscribe(["no spaces"], {}, () => {}),
        /not a channel name/,
      );
    });
  });
}
