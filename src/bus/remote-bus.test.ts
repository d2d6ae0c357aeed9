/**
 * The reconnect state machine and the send path of RemoteBus, driven through an in-memory transport so that each
 * failure happens exactly where the test puts it. The real transports run the same paths in postgres-bus.test.ts
 * and amqp-bus.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeSignals } from "./coalesce.ts";
import { Inbox, isWake, record } from "./remote-bus-cases.ts";
import { RemoteBus, reconnectDelay, type ReconnectInfo } from "./remote-bus.ts";

class MemoryBus extends RemoteBus {
  failOpens = 0;
  opens = 0;
  shuts = 0;
  up = false;
  readonly sent = new Inbox<string>();

  constructor() {
    super({ maxPayloadBytes: 7999, transport: "memory" });
  }

  readonly openings = new Inbox<number>();

  protected async open(): Promise<void> {
    this.opens++;
    this.openings.push(this.opens);
    if (this.failOpens > 0) {
      this.failOpens--;
      throw new Error("refused");
    }
    this.up = true;
  }

  protected async shut(): Promise<void> {
    this.shuts++;
    this.up = false;
  }

  protected transmit(payload: string): void {
    if (!this.up) throw new Error("down");
    this.sent.push(payload);
  }

  lose(): void {
    this.connectionLost(new Error("gone"));
  }

  deliver(payload: string): void {
    this.receive(payload);
  }
}

test("reconnectDelay: 100 ms doubling to a 5 s cap, with ±20 % jitter", () => {
  assert.equal(
    reconnectDelay(0, () => 0.5),
    100,
  );
  assert.equal(
    reconnectDelay(1, () => 0.5),
    200,
  );
  assert.equal(
    reconnectDelay(5, () => 0.5),
    3200,
  );
  assert.equal(
    reconnectDelay(6, () => 0.5),
    5000,
  );
  assert.equal(
    reconnectDelay(1000, () => 0.5),
    5000,
  );
  assert.equal(
    reconnectDelay(0, () => 0),
    80,
  );
  assert.equal(
    reconnectDelay(0, () => 0.999999),
    120,
  );
  assert.equal(
    reconnectDelay(10, () => 0.999999),
    5000,
    "jitter never exceeds the cap",
  );
  assert.equal(
    reconnectDelay(10, () => 0),
    4000,
  );
});

test("RemoteBus: a lost connection is reopened with backoff; listeners and local subscribers hear about it", async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.start();
  const inbox = record(bus);
  const reconnects = new Inbox<ReconnectInfo>();
  bus.onReconnect(reconnects.push);

  bus.failOpens = 2;
  bus.lose();
  assert.equal(bus.connected, false);
  assert.doesNotThrow(() => bus.publish("wake", { queue: "while-down" }));
  await inbox.waitFor("local delivery while down", isWake("while-down"));
  await reconnects.waitFor("the reconnect");
  assert.equal(bus.connected, true);
  assert.equal(bus.opens, 4, "start + two refused + one accepted");
  assert.equal(reconnects.items[0]!.attempts, 3);
  assert.ok(reconnects.items[0]!.downMs >= 80 + 160 + 320, `down ${reconnects.items[0]!.downMs} ms`);
  await inbox.waitFor("the synthetic events {} after the reconnect", ([c]) => c === "events");
  assert.equal(bus.sent.count(), 0, "what was published while down was dropped, not queued");

  bus.publish("wake", { queue: "after" });
  await bus.sent.waitFor("a send after the reconnect");
  assert.match(bus.sent.items[0]!, /"after"/);
});

test("RemoteBus: a failed transmit is dropped quietly; a second loss while reconnecting is ignored", async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.start();
  bus.up = false; // the transport died but has not said so yet
  bus.publish("events", {});
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(bus.sent.count(), 0);
  bus.lose();
  bus.lose();
  const reconnected = new Inbox<ReconnectInfo>();
  bus.onReconnect(reconnected.push);
  await reconnected.waitFor("the reconnect");
  assert.equal(bus.opens, 2);
});

test("RemoteBus: own echoes are dropped, other origins' signals are delivered, garbage is ignored", async (t) => {
  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.start();
  const inbox = record(bus);
  bus.deliver(encodeSignals(bus.origin, [{ channel: "wake", message: { queue: "echo" } }], 7999).payloads[0]!);
  bus.deliver("not ours");
  bus.deliver(encodeSignals("someone-else", [{ channel: "wake", message: { queue: "remote" } }], 7999).payloads[0]!);
  await inbox.waitFor("the remote signal", isWake("remote"));
  assert.equal(inbox.count(isWake("echo")), 0);
});

test("RemoteBus: start() failure rejects and allows nothing to linger; close() while waiting to reconnect stops the loop", async (t) => {
  const failing = new MemoryBus();
  failing.failOpens = 1;
  await assert.rejects(failing.start(), /refused/);
  assert.equal(failing.shuts, 1);
  await failing.close();

  const bus = new MemoryBus();
  t.after(() => bus.close());
  await bus.start();
  bus.failOpens = 1000;
  bus.lose();
  await bus.openings.waitFor("a failed reconnect attempt", (n) => n >= 2);
  await bus.close();
  // The loop only goes on through its timer (close() awaits an attempt in flight): no timer, no more attempts.
  assert.ok(!process.getActiveResourcesInfo().includes("Timeout"), "the reconnect timer is cleared by close()");
  assert.equal(bus.connected, false);
  await assert.rejects(bus.start(), /after close/);
});

test("RemoteBus: close() flushes what was published in the same tick", async () => {
  const bus = new MemoryBus();
  await bus.start();
  bus.publish("cancel", { id: 1 });
  bus.publish("cancel", { id: 1 });
  const sent = bus.sent;
  await bus.close();
  assert.equal(sent.count(), 1);
  assert.match(sent.items[0]!, /\["c",1\]\]$/);
  bus.publish("cancel", { id: 2 });
  assert.equal(sent.count(), 1, "publish after close() is ignored");
});
