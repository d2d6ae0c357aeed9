/**
 * Wakeup, the doorbell of the service loops, and sleep(), the pause between their passes. What "has not resolved"
 * means here is counted in turns of the event loop, not in milliseconds: a settled promise's callbacks have run after
 * one setImmediate, so a wait still pending after a few turns is waiting for something else.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { leakedResources } from "./fixtures/runtime-handlers.ts";
import { sleep, Wakeup } from "./wakeup.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer or handle behind"));

const turns = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A promise with a flag that says whether it has settled. */
function watched(promise: Promise<void>) {
  const state = { settled: false, promise };
  promise.then(() => (state.settled = true));
  return state;
}

/** Timers (ref'ed) alive in this process. */
const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;

const MINUTE = 60_000;

test("a ring while nobody waits is remembered: the next wait returns at once, and only that one", async () => {
  const wakeup = new Wakeup();
  const signal = new AbortController().signal;
  wakeup.ring();
  wakeup.ring(); // two rings before a wait are one: the loop looks once and finds all the work
  const first = watched(wakeup.wait(MINUTE, signal));
  await turns(1);
  assert.equal(first.settled, true, "the remembered ring ended the wait without a timer");
  const second = watched(wakeup.wait(MINUTE, signal));
  await turns();
  assert.equal(second.settled, false, "the ring was used up by the first wait");
  wakeup.ring();
  await second.promise;
  assert.equal(timers(), 0, "the wait's timer was cleared");
});

test("a ring wakes the waiting loop at once; a ring after that is remembered for the next wait", async () => {
  const wakeup = new Wakeup();
  const signal = new AbortController().signal;
  const waiting = watched(wakeup.wait(MINUTE, signal));
  await turns();
  assert.equal(waiting.settled, false, "nothing rang yet");
  wakeup.ring();
  await waiting.promise;
  // Work that arrives between the loop's check and its next wait is not missed.
  wakeup.ring();
  const next = watched(wakeup.wait(MINUTE, signal));
  await turns(1);
  assert.equal(next.settled, true);
  assert.equal(timers(), 0);
});

test("a wait ends at its timeout without a ring, not before; a ring after a timed-out wait is kept", async () => {
  const wakeup = new Wakeup();
  const signal = new AbortController().signal;
  const began = performance.now();
  await wakeup.wait(30, signal);
  // A lower bound only: a timer never fires early (1 ms for the clocks' granularity), however slow the machine.
  assert.ok(performance.now() - began >= 29, `the wait ended after ${performance.now() - began} ms`);
  wakeup.ring();
  const next = watched(wakeup.wait(MINUTE, signal));
  await turns(1);
  assert.equal(next.settled, true, "the timed-out wait no longer held the doorbell: the ring was remembered");
});

test("a wait ends when its signal aborts, and an aborted signal ends it at once; nothing is left behind", async () => {
  const wakeup = new Wakeup();
  const controller = new AbortController();
  const waiting = watched(wakeup.wait(MINUTE, controller.signal));
  await turns();
  assert.equal(waiting.settled, false);
  assert.equal(timers(), 1, "the timeout's timer is armed while it waits");
  controller.abort();
  await waiting.promise;
  assert.equal(timers(), 0, "the abort cleared the timer");
  const again = watched(wakeup.wait(MINUTE, controller.signal));
  await turns(1);
  assert.equal(again.settled, true, "a wait on an aborted signal does not wait");
  assert.equal(timers(), 0);
});

test("a ring after the waiter was released by an abort is remembered", async () => {
  const wakeup = new Wakeup();
  const controller = new AbortController();
  const waiting = wakeup.wait(MINUTE, controller.signal);
  controller.abort();
  await waiting;
  wakeup.ring();
  const next = watched(wakeup.wait(MINUTE, new AbortController().signal));
  await turns(1);
  assert.equal(next.settled, true);
});

test("sleep() resolves after its time, at once when aborted, and never rejects", async () => {
  const began = performance.now();
  await sleep(30, new AbortController().signal);
  // A lower bound only, as above.
  assert.ok(performance.now() - began >= 29, `slept ${performance.now() - began} ms`);

  const controller = new AbortController();
  const sleeping = watched(sleep(MINUTE, controller.signal));
  await turns();
  assert.equal(sleeping.settled, false);
  controller.abort();
  await sleeping.promise;
  assert.equal(timers(), 0, "the abort cleared the timer");
  const already = watched(sleep(MINUTE, controller.signal));
  await turns(1);
  assert.equal(already.settled, true, "an aborted signal does not sleep");
  assert.equal(timers(), 0);
});
