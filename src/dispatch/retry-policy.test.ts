import assert from "node:assert/strict";
import { test } from "node:test";
import {
  attemptsAllowed,
  OVERLOAD_MIN_MS,
  parseRetryAfter,
  RETRY_AFTER_MAX_MS,
  RETRY_SCHEDULE_MS,
  retryDelay,
  type RetryPolicy,
} from "./retry-policy.ts";

const SCHEDULE: RetryPolicy = { retryMode: "schedule", secondsRetry: 30, maxAttempts: null };
const FIXED: RetryPolicy = { retryMode: "fixed", secondsRetry: 30, maxAttempts: null };
const plain = { status: 500, timedOut: false, retryAfterMs: null };
const middle = () => 0.5;

test("the default schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then done", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((failed) => retryDelay(SCHEDULE, failed, plain, middle));
  assert.deepEqual(delays, [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, null]);
  assert.equal(attemptsAllowed(SCHEDULE), RETRY_SCHEDULE_MS.length);
});

test("jitter stays within ±20 % of the schedule's delay", () => {
  assert.equal(
    retryDelay(SCHEDULE, 2, plain, () => 0),
    240_000,
  );
  assert.equal(
    retryDelay(SCHEDULE, 2, plain, () => 1),
    360_000,
  );
  for (let i = 0; i < 200; i++) {
    const delay = retryDelay(SCHEDULE, 3, plain)!;
    assert.ok(delay >= 1_440_000 && delay <= 2_160_000, `${delay} is out of bounds`);
  }
});

test("a timeout or a 429 waits at least a minute", () => {
  assert.equal(retryDelay(SCHEDULE, 1, { ...plain, status: null, timedOut: true }, middle), OVERLOAD_MIN_MS);
  assert.equal(retryDelay(SCHEDULE, 1, { ...plain, status: 429 }, middle), OVERLOAD_MIN_MS);
  assert.equal(retryDelay(SCHEDULE, 2, { ...plain, status: 429 }, middle), 300_000, "a longer delay stays");
});

test("Retry-After slows a retry down, up to an hour, never speeds it up", () => {
  assert.equal(retryDelay(SCHEDULE, 1, { ...plain, retryAfterMs: 120_000 }, middle), 120_000);
  assert.equal(retryDelay(SCHEDULE, 1, { ...plain, retryAfterMs: 1_000 }, middle), 5_000);
  assert.equal(retryDelay(SCHEDULE, 1, { ...plain, retryAfterMs: 86_400_000 }, middle), RETRY_AFTER_MAX_MS);
  assert.equal(retryDelay(SCHEDULE, 6, { ...plain, retryAfterMs: 86_400_000 }, middle), 36_000_000);
  assert.equal(retryDelay(FIXED, 1, { ...plain, retryAfterMs: 45_000 }, middle), 45_000);
});

test("fixed mode: every seconds_retry, exactly, 100 attempts unless the publisher says otherwise", () => {
  assert.equal(
    retryDelay(FIXED, 1, plain, () => 0),
    30_000,
  );
  assert.equal(
    retryDelay(FIXED, 99, { ...plain, timedOut: true }, () => 1),
    30_000,
  );
  assert.equal(retryDelay(FIXED, 100, plain), null);
  assert.equal(retryDelay({ ...FIXED, maxAttempts: 3 }, 3, plain), null);
  assert.equal(retryDelay({ ...SCHEDULE, maxAttempts: 12 }, 11, plain, middle), 36_000_000, "the last delay repeats");
  assert.equal(retryDelay({ ...SCHEDULE, maxAttempts: 1 }, 1, plain), null);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  const now = new Date("2030-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Tue, 01 Jan 2030 00:02:00 GMT", now), 120_000);
  assert.equal(parseRetryAfter("Mon, 31 Dec 2029 00:00:00 GMT", now), 0, "a date past is now");
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter("-5", now), null);
  assert.equal(parseRetryAfter("1.5", now), null);
});
