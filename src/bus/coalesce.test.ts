import assert from "node:assert/strict";
import { test } from "node:test";
import { Coalescer, SignalBatch, SignalCodec, decodeSignals, encodeSignals, type BusSignal } from "./coalesce.ts";

const wake = (queue: string): BusSignal => ({ channel: "wake", message: { queue } });
const cancel = (id: number): BusSignal => ({ channel: "cancel", message: { id } });
const scheduled = (at: number): BusSignal => ({ channel: "scheduled", message: { at } });
const events: BusSignal = { channel: "events", message: {} };

test("SignalBatch: events once, wake once per queue, the earliest scheduled, every distinct cancel", () => {
  const batch = new SignalBatch();
  assert.equal(batch.empty, true);
  for (let i = 0; i < 1000; i++) {
    batch.add(events);
    batch.add(wake(`q${i % 3}`));
    batch.add(scheduled(10_000 - i));
    batch.add(cancel(i % 4));
  }
  assert.equal(batch.empty, false);
  assert.deepEqual(batch.drain(), [
    cancel(0),
    cancel(1),
    cancel(2),
    cancel(3),
    wake("q0"),
    wake("q1"),
    wake("q2"),
    scheduled(9001),
    events,
  ]);
  assert.equal(batch.empty, true);
  assert.deepEqual(batch.drain(), []);
});

test("Coalescer: everything published in one tick goes out in one send, the next tick in another", async () => {
  const sends: BusSignal[][] = [];
  let notify: () => void = () => {};
  const coalescer = new Coalescer((signals) => {
    sends.push(signals);
    notify();
  });
  const sent = (n: number) =>
    new Promise<void>((resolve) => {
      notify = () => sends.length >= n && resolve();
      notify();
    });
  for (let i = 0; i < 1000; i++) coalescer.add(events);
  coalescer.add(wake("a"));
  coalescer.add(wake("b"));
  assert.equal(sends.length, 0, "nothing is sent inside the publishing tick");
  await sent(1);
  assert.deepEqual(sends[0], [wake("a"), wake("b"), events]);
  coalescer.add(wake("c"));
  await sent(2);
  assert.deepEqual(sends[1], [wake("c")]);
  assert.equal(sends.length, 2);
});

/** Timers (ref'ed) alive in this process: the coalescer's delay is one while armed. */
const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;

const nextTick = () => new Promise((resolve) => setImmediate(resolve));

test("Coalescer: a batch of only events waits for the delay; any other signal sends it at the next tick", async () => {
  const sends: [number, BusSignal[]][] = [];
  let notify: () => void = () => {};
  const coalescer = new Coalescer((signals) => {
    sends.push([performance.now(), signals]);
    notify();
  }, 50);
  const sent = (n: number) =>
    new Promise<void>((resolve) => {
      notify = () => sends.length >= n && resolve();
      notify();
    });
  const t0 = performance.now();
  coalescer.add(events);
  await nextTick();
  await nextTick();
  coalescer.add(events);
  assert.equal(sends.length, 0, "events alone are not sent at the next tick");
  await sent(1);
  assert.deepEqual(sends[0]![1], [events], "the events of several ticks go out once");
  // The delay is the thing under test, and only as a lower bound, which a slow machine cannot break (a timer never
  // fires early); 5 ms for the difference between the timer's clock and performance.now().
  assert.ok(sends[0]![0] - t0 >= 45, `sent ${Math.round(sends[0]![0] - t0)} ms after the first, not before the delay`);

  const armed = timers();
  coalescer.add(events);
  assert.equal(timers(), armed + 1, "events alone arm the delay");
  coalescer.add(wake("a"));
  // The coalescer's own setImmediate was queued first: it has run once this one resolves.
  await nextTick();
  assert.equal(sends.length, 2, "sent at the next tick, not after the delay");
  assert.deepEqual(sends[1]![1], [wake("a"), events], "a wake takes the waiting events along");
  assert.equal(timers(), armed, "the delay's timer was cancelled with the send");
});

test("Coalescer: takePending() hands over the pending batch and cancels the tick", async () => {
  let sends = 0;
  const coalescer = new Coalescer(() => sends++);
  coalescer.add(cancel(1));
  coalescer.add(cancel(1));
  assert.deepEqual(coalescer.takePending(), [cancel(1)]);
  await nextTick();
  await nextTick();
  assert.equal(sends, 0);
  assert.deepEqual(coalescer.takePending(), []);
  const before = timers();
  coalescer.add(events);
  assert.equal(timers(), before + 1, "events alone arm the delay");
  assert.deepEqual(coalescer.takePending(), [events]);
  assert.equal(timers(), before, "the events delay was cancelled too");
  await nextTick();
  assert.equal(sends, 0);
});

test("encodeSignals/decodeSignals: a compact JSON array that round-trips", () => {
  const signals = [cancel(42), wake("emails"), scheduled(1_767_225_600_000), events];
  const { payloads, dropped } = encodeSignals("abc", signals, 7999);
  assert.deepEqual(dropped, []);
  assert.deepEqual(payloads, ['["abc",["c",42],["w","emails"],["s",1767225600000],["e"]]']);
  assert.deepEqual(decodeSignals(payloads[0]!), { origin: "abc", signals });
});

test("encodeSignals: splits so that no payload exceeds the byte limit, counting multi-byte characters", () => {
  const signals = Array.from({ length: 500 }, (_, i) => wake(`file-é-${i}-${"ü".repeat(i % 7)}`));
  for (const maxBytes of [64, 200, 1000, 7999]) {
    const { payloads, dropped } = encodeSignals("origin-1", signals, maxBytes);
    assert.deepEqual(dropped, []);
    for (const payload of payloads)
      assert.ok(Buffer.byteLength(payload) <= maxBytes, `${Buffer.byteLength(payload)} > ${maxBytes}`);
    const back = payloads.flatMap((payload) => decodeSignals(payload)!.signals);
    assert.deepEqual(back, signals, `round trip at ${maxBytes} bytes`);
    // Packed greedily: every payload but the last would overflow with the next payload's first entry.
    for (let i = 0; i + 1 < payloads.length; i++) {
      const next = JSON.stringify((JSON.parse(payloads[i + 1]!) as unknown[])[1]);
      assert.ok(
        Buffer.byteLength(payloads[i]!) + 1 + Buffer.byteLength(next) > maxBytes,
        `payload ${i} at ${maxBytes} could take one more`,
      );
    }
  }
});

test("encodeSignals: a signal that can never fit is dropped and reported, the rest still go", () => {
  const huge = wake("x".repeat(10_000));
  const { payloads, dropped } = encodeSignals("o", [wake("a"), huge, wake("b")], 7999);
  assert.deepEqual(dropped, [huge]);
  assert.deepEqual(
    payloads.flatMap((p) => decodeSignals(p)!.signals),
    [wake("a"), wake("b")],
  );
  assert.deepEqual(encodeSignals("o", [], 7999).payloads, []);
});

test("decodeSignals: foreign payloads are null; unknown or malformed entries are skipped", () => {
  for (const payload of ["", "not json", "{}", "[]", "[1]", "null", '"x"'])
    assert.equal(decodeSignals(payload), null, payload);
  const decoded = decodeSignals(
    '["o",["e"],["z",1],["w",5],["c",1.5],["c",9007199254740993],["s","soon"],"junk",["c",3],["w","q"]]',
  );
  assert.deepEqual(decoded, { origin: "o", signals: [events, cancel(3), wake("q")] });
});

test("SignalCodec: drops its own echoes, passes other origins' signals", () => {
  const mine = new SignalCodec("node-a", 7999);
  const theirs = new SignalCodec("node-b", 7999);
  const [own] = mine.encode([wake("q")]).payloads;
  const [other] = theirs.encode([wake("q"), cancel(5)]).payloads;
  assert.deepEqual(mine.receive(own!), []);
  assert.deepEqual(mine.receive(other!), [wake("q"), cancel(5)]);
  assert.deepEqual(theirs.receive(own!), [wake("q")]);
  assert.equal(mine.receive("garbage"), null);
});
