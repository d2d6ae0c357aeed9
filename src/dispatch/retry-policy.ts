/**
 * When a failed delivery is tried again: a pure function of the publisher's policy, how many attempts have failed,
 * how this one failed, and a random number (the jitter), so that tests pin every branch without a clock.
 *
 * - `schedule` (the default): Svix's schedule, the one Standard Webhooks recommends: the first attempt at once, then
 *   5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts over about 27.6 h), each ±20 % so that deliveries failing
 *   together do not retry together. A timeout or a 429 waits at least a minute (the receiver is overloaded).
 * - `fixed`: every `secondsRetry` seconds, exactly (Postoffice's seconds_retry, from its first design), for 100
 *   attempts by default (Postoffice's Oban budget).
 * - `maxAttempts` on the publisher overrides either default; past the schedule's end its last delay repeats.
 * - `Retry-After` (seconds or an HTTP date) is honoured when it asks for more than the policy's delay, up to an
 *   hour: a receiver may slow its retries down, never speed them up, and never park them for days.
 */
import type { RetryMode } from "../store/dispatch-store.ts";

export const RETRY_SCHEDULE_MS = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
export const JITTER = 0.2;
export const OVERLOAD_MIN_MS = 60_000;
export const RETRY_AFTER_MAX_MS = 3_600_000;
export const FIXED_MAX_ATTEMPTS = 100;

export type RetryPolicy = { retryMode: RetryMode; secondsRetry: number; maxAttempts: number | null };

export type Failure = {
  /** The response's status, or null when none came (connection refused, reset, timeout). */
  status: number | null;
  timedOut: boolean;
  /** The response's Retry-After, in ms from now. */
  retryAfterMs: number | null;
};

/** Attempts a delivery gets under `policy`, the first included. */
export function attemptsAllowed(policy: RetryPolicy): number {
  return policy.maxAttempts ?? (policy.retryMode === "fixed" ? FIXED_MAX_ATTEMPTS : RETRY_SCHEDULE_MS.length);
}

/**
 * The delay before the next attempt, after `failed` attempts have failed (this one included, so 1 after the first),
 * or null when they are all spent.
 */
export function retryDelay(
  policy: RetryPolicy,
  failed: number,
  failure: Failure,
  random: () => number = Math.random,
): number | null {
  if (failed >= attemptsAllowed(policy)) return null;
  let delay: number;
  if (policy.retryMode === "fixed") delay = policy.secondsRetry * 1000;
  else {
    const base = RETRY_SCHEDULE_MS[Math.min(failed, RETRY_SCHEDULE_MS.length - 1)]!;
    delay = Math.round(base * (1 - JITTER + 2 * JITTER * random()));
    if (failure.timedOut || failure.status === 429) delay = Math.max(delay, OVERLOAD_MIN_MS);
  }
  if (failure.retryAfterMs !== null && failure.retryAfterMs > delay)
    delay = Math.max(delay, Math.min(failure.retryAfterMs, RETRY_AFTER_MAX_MS));
  return delay;
}

/** A Retry-After header's value in ms from `now`: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return null;
  return Math.max(0, at - now.getTime());
}
