/**
 * Retry delays: exponential growth from `baseMs`, capped at `maxMs`, with "full jitter" around the
 * exponential value so that tasks failing together do not retry together (the thundering herd).
 */

export type BackoffOptions = {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Fraction of the delay that is randomised, 0 (none) to 1 (anywhere between 0 and the delay). */
  jitter: number;
};

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60 * 60 * 1000, jitter: 0.2 };

/**
 * The delay before retrying after failed attempt number `attempt` (1 = the first attempt failed).
 * `random` is injectable so tests can pin the jitter.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const raw = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(exponent, 52));
  const spread = raw * Math.min(1, Math.max(0, options.jitter));
  return Math.round(raw - spread + random() * spread);
}
