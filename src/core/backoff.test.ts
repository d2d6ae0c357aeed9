import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.ts";

const noJitter: BackoffOptions = { baseMs: 100, maxMs: 1_000_000, jitter: 0 };
const pinned = (value: number) => () => value;

test("grows exponentially from baseMs: base, 2·base, 4·base, ...", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, noJitter)),
    [100, 200, 400, 800, 1600],
  );
});

test("attempt 0, negative or fractional attempts count as the first", () => {
  assert.equal(backoffDelay(0, noJitter), 100);
  assert.equal(backoffDelay(-3, noJitter), 100);
  assert.equal(backoffDelay(2.9, noJitter), 200);
});

test("is capped at maxMs, even for huge attempt numbers", () => {
  const options = { baseMs: 100, maxMs: 1000, jitter: 0 };
  assert.equal(backoffDelay(4, options), 800);
  assert.equal(backoffDelay(5, options), 1000);
  assert.equal(backoffDelay(60, options), 1000);
  assert.equal(backoffDelay(10_000, options), 1000);
  assert.ok(Number.isFinite(backoffDelay(10_000, { ...options, maxMs: Number.MAX_SAFE_INTEGER })));
});

test("jitter spreads the delay over [raw·(1 − jitter), raw], pinned by the random source", () => {
  const options = { baseMs: 1000, maxMs: 1_000_000, jitter: 0.2 };
  assert.equal(backoffDelay(1, options, pinned(0)), 800);
  assert.equal(backoffDelay(1, options, pinned(0.5)), 900);
  assert.equal(backoffDelay(1, options, pinned(0.999999)), 1000);
  assert.equal(backoffDelay(3, options, pinned(0)), 3200);
  assert.equal(backoffDelay(3, options, pinned(0.5)), 3600);
});

test("jitter bounds hold for any random value, and the cap applies before jitter", () => {
  const options = { baseMs: 50, maxMs: 3000, jitter: 0.3 };
  for (let attempt = 1; attempt <= 12; attempt++) {
    const raw = Math.min(3000, 50 * 2 ** (attempt - 1));
    for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
      const delay = backoffDelay(attempt, options, pinned(r));
      assert.ok(
        delay >= Math.floor(raw * 0.7) && delay <= raw,
        `attempt ${attempt}, r ${r}: ${delay} outside [${raw * 0.7}, ${raw}]`,
      );
    }
  }
});

test("jitter 1 is full jitter (0 to raw); jitter outside [0, 1] is clamped", () => {
  const base = { baseMs: 100, maxMs: 10_000 };
  assert.equal(backoffDelay(2, { ...base, jitter: 1 }, pinned(0)), 0);
  assert.equal(backoffDelay(2, { ...base, jitter: 1 }, pinned(0.5)), 100);
  assert.equal(backoffDelay(2, { ...base, jitter: 5 }, pinned(0)), 0);
  assert.equal(backoffDelay(2, { ...base, jitter: -1 }, pinned(0)), 200);
});

test("uses Math.random by default, within bounds; results are whole milliseconds", () => {
  for (let i = 0; i < 200; i++) {
    const delay = backoffDelay(3, DEFAULT_BACKOFF);
    assert.ok(Number.isInteger(delay));
    assert.ok(delay >= 4000 * (1 - DEFAULT_BACKOFF.jitter) && delay <= 4000, String(delay));
  }
});
