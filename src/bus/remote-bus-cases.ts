/**
 * The behaviour every cross-node bus must have, written once and run by each bus's test file against its real
 * server: delivery to both nodes exactly once, coalescing, splitting, isolation, local delivery without a
 * connection, and no handles left after close(). Every wait is bounded and fails with a message saying what
 * did not arrive.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { test, type TestContext } from "node:test";
import type { BusChannel, BusMessages } from "./bus.ts";
import type { ReconnectInfo, RemoteBus } from "./remote-bus.ts";

export const WAIT_MS = 10_000;

/** Collects what arrives and lets a test wait, bounded, for something in particular. */
export class Inbox<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();

  push = (item: T): void => {
    this.items.push(item);
    for (const waiter of [...this.#waiters]) waiter();
  };

  count(predicate: (item: T) => boolean = () => true): number {
    return this.items.filter(predicate).length;
  }

  /** Resolves once `predicate` holds for at least `n` items; rejects after `ms` naming `what`. */
  waitFor(what: string, predicate: (item: T) => boolean = () => true, n = 1, ms = WAIT_MS): Promise<void> {
    return waitUntil(
      what,
      () => this.count(predicate) >= n,
      ms,
      this.#waiters,
      () => JSON.stringify(this.items).slice(0, 500),
    );
  }
}

function waitUntil(
  what: string,
  done: () => boolean,
  ms: number,
  waiters: Set<() => void>,
  seen: () => string,
): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!done()) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${seen()}`));
    }, ms);
    timer.unref();
    waiters.add(check);
  });
}

/** Records every message a bus delivers locally, on every channel, as [channel, message]. */
export function record(bus: RemoteBus): Inbox<[BusChannel, unknown]> {
  const inbox = new Inbox<[BusChannel, unknown]>();
  for (const channel of ["wake", "cancel", "events", "scheduled"] as const) {
    bus.subscribe(channel, (message) => inbox.push([channel, message]));
  }
  return inbox;
}

export function nextReconnect(bus: RemoteBus, what: string, ms = WAIT_MS): Promise<ReconnectInfo> {
  const inbox = new Inbox<ReconnectInfo>();
  const stop = bus.onReconnect(inbox.push);
  return inbox
    .waitFor(what, undefined, 1, ms)
    .then(() => inbox.items[0]!)
    .finally(stop);
}

export const isWake =
  (queue: string) =>
  ([c, m]: [BusChannel, unknown]) =>
    c === "wake" && (m as BusMessages["wake"]).queue === queue;

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/** A connection that hears every raw payload on a channel/exchange, as another process would. */
export type RawListener = { payloads: Inbox<string>; close(): Promise<void> };

export type BusHarness<B extends RemoteBus> = {
  name: string;
  /** Skips (or fails under CI=true) when the server is missing; returns false to stop the test. */
  available(t: TestContext): Promise<boolean>;
  /** A new, unstarted bus on the named channel or exchange. */
  create(name: string): B;
  raw(name: string): Promise<RawListener>;
  maxPayloadBytes: number;
  /** How a child process builds the same bus: module URL, export name, constructor options (JSON). */
  standalone(name: string): { module: string; exportName: string; options: Record<string, unknown> };
};

/** Starts a bus and closes it after the test, even when the test fails. */
export async function started<B extends RemoteBus>(t: TestContext, bus: B): Promise<B> {
  t.after(() => bus.close());
  await bus.start();
  return bus;
}

/**
 * Waits until both nodes have heard everything published so far: a marker sent each way, in order behind it.
 * Both transports keep one sender's messages in order, so whatever A or B sent before has arrived by then.
 */
export async function settle(
  a: RemoteBus,
  aInbox: Inbox<[BusChannel, unknown]>,
  b: RemoteBus,
  bInbox: Inbox<[BusChannel, unknown]>,
): Promise<void> {
  const marker = uniqueName("marker");
  a.publish("wake", { queue: `${marker}_ab` });
  await bInbox.waitFor(`marker ${marker}_ab on B`, isWake(`${marker}_ab`));
  b.publish("wake", { queue: `${marker}_ba` });
  await aInbox.waitFor(`marker ${marker}_ba on A`, isWake(`${marker}_ba`));
}

export function remoteBusCases<B extends RemoteBus>(h: BusHarness<B>): void {
  test(`${h.name}: a message reaches subscribers on the publishing node and on the other, exactly once each`, async (t) => {
    if (!(await h.available(t))) return;
    const name = uniqueName("conveyor_t");
    const a = await started(t, h.create(name));
    const b = await started(t, h.create(name));
    const [aIn, bIn] = [record(a), record(b)];
    assert.notEqual(a.origin, b.origin);

    a.publish("wake", { queue: "q1" });
    a.publish("cancel", { id: 42 });
    a.publish("scheduled", { at: 1_767_225_600_000 });
    a.publish("events", {});
    await bIn.waitFor("the four signals on B", () => true, 4);
    await settle(a, aIn, b, bIn);

    for (const inbox of [aIn, bIn]) {
      assert.equal(inbox.count(isWake("q1")), 1);
      assert.deepEqual(
        inbox.items.filter(([c]) => c === "cancel"),
        [["cancel", { id: 42 }]],
      );
      assert.deepEqual(
        inbox.items.filter(([c]) => c === "scheduled"),
        [["scheduled", { at: 1_767_225_600_000 }]],
      );
      assert.deepEqual(
        inbox.items.filter(([c]) => c === "events"),
        [["events", {}]],
      );
    }
  });

  test(`${h.name}: local delivery is asynchronous and needs no connection`, async (t) => {
    const bus = h.create(uniqueName("conveyor_t"));
    t.after(() => bus.close());
    const inbox = record(bus);
    bus.publish("wake", { queue: "before-start" });
    assert.equal(inbox.count(), 0, "delivered inside publish()");
    await inbox.waitFor("local delivery before start()", isWake("before-start"));
    assert.equal(bus.connected, false);
  });

  test(`${h.name}: 1000 events and wakes for 3 queues in one tick arrive as 1 events + 3 wakes in one message`, async (t) => {
    if (!(await h.available(t))) return;
    const name = uniqueName("conveyor_t");
    const raw = await h.raw(name);
    t.after(() => raw.close());
    const a = await started(t, h.create(name));
    const b = await started(t, h.create(name));
    const bIn = record(b);

    for (let i = 0; i < 1000; i++) {
      a.publish("events", {});
      a.publish("wake", { queue: `q${i % 3}` });
      a.publish("scheduled", { at: 5000 - i });
      a.publish("cancel", { id: i % 2 });
    }
    await raw.payloads.waitFor("the coalesced message on the raw listener");
    await bIn.waitFor("the coalesced signals on B", () => true, 7);
    await settle(a, record(a), b, bIn);

    assert.equal(
      raw.payloads.count((p) => !p.includes("marker")),
      1,
      `raw messages: ${raw.payloads.items.join(" | ")}`,
    );
    const received = bIn.items.filter(
      ([c, m]) => !(c === "wake" && (m as { queue: string }).queue.startsWith("marker")),
    );
    assert.equal(received.filter(([c]) => c === "events").length, 1);
    assert.deepEqual(
      received
        .filter(([c]) => c === "wake")
        .map(([, m]) => m)
        .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
      [{ queue: "q0" }, { queue: "q1" }, { queue: "q2" }],
    );
    assert.deepEqual(
      received.filter(([c]) => c === "scheduled"),
      [["scheduled", { at: 4001 }]],
    );
    assert.deepEqual(
      received.filter(([c]) => c === "cancel").map(([, m]) => m),
      [{ id: 0 }, { id: 1 }],
    );
  });

  test(`${h.name}: a batch too large for one message is split, and every signal arrives`, async (t) => {
    if (!(await h.available(t))) return;
    const name = uniqueName("conveyor_t");
    const raw = await h.raw(name);
    t.after(() => raw.close());
    const a = await started(t, h.create(name));
    const b = await started(t, h.create(name));
    const bIn = record(b);

    const ids = Array.from({ length: 3000 }, (_, i) => 1_000_000_000 + i);
    for (const id of ids) a.publish("cancel", { id });
    await bIn.waitFor("3000 cancels on B", ([c]) => c === "cancel", ids.length);
    await settle(a, record(a), b, bIn);
    await raw.payloads.waitFor("the marker behind the batch on the raw listener", (p) => p.includes("marker"));
    const got = bIn.items.filter(([c]) => c === "cancel").map(([, m]) => (m as { id: number }).id);
    assert.deepEqual(got.sort(), ids, "every id exactly once");
    const batches = raw.payloads.items.filter((p) => !p.includes("marker"));
    for (const payload of batches)
      assert.ok(Buffer.byteLength(payload) <= h.maxPayloadBytes, `payload of ${Buffer.byteLength(payload)} bytes`);
    const bytes = batches.reduce((sum, p) => sum + Buffer.byteLength(p), 0);
    t.diagnostic(`3000 cancels went out in ${batches.length} message(s) of ${bytes} bytes in all`);
  });

  test(`${h.name}: buses on different channels do not hear each other`, async (t) => {
    if (!(await h.available(t))) return;
    const [one, two] = [uniqueName("conveyor_t"), uniqueName("conveyor_t")];
    const a = await started(t, h.create(one));
    const b = await started(t, h.create(one));
    const c = await started(t, h.create(two));
    const d = await started(t, h.create(two));
    const [aIn, bIn, cIn, dIn] = [record(a), record(b), record(c), record(d)];

    a.publish("wake", { queue: "only-one" });
    await bIn.waitFor("the message on B", isWake("only-one"));
    await settle(c, cIn, d, dIn);
    await settle(a, aIn, b, bIn);
    assert.equal(cIn.count(isWake("only-one")) + dIn.count(isWake("only-one")), 0);
  });

  test(`${h.name}: a process whose buses are closed exits by itself (no handles left)`, async (t) => {
    if (!(await h.available(t))) return;
    const { module, exportName, options } = h.standalone(uniqueName("conveyor_t"));
    // The child exits on its own only if close() left nothing behind; if it lingers, an unref'd timer reports
    // what is still open and exits 3.
    const code = `
      const { ${exportName}: Bus } = await import(${JSON.stringify(module)});
      const options = ${JSON.stringify(options)};
      const [a, b] = [new Bus(options), new Bus(options)];
      await a.start();
      await b.start();
      await new Promise((resolve) => { b.subscribe("wake", resolve); a.publish("wake", { queue: "x" }); });
      a.publish("events", {}); // still pending at close(): flushed, not left behind as an Immediate
      await Promise.all([a.close(), b.close()]);
      a.publish("wake", { queue: "after-close" }); // ignored, does not throw
      setTimeout(() => { console.log(JSON.stringify(process.getActiveResourcesInfo())); process.exit(3); }, 3000).unref();
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "--eval", code], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(
      child.status,
      0,
      `the child did not exit cleanly (status ${child.status}, signal ${child.signal}); ` +
        `still open: ${child.stdout.trim()}; stderr: ${child.stderr.trim().slice(0, 1000)}`,
    );
  });
}
