/**
 * What the live bench counts with: a latency histogram that load generators fill and the parent merges (hundreds of
 * thousands of deliveries, so no list of samples crosses the IPC channel), and a fingerprint of a sequence of log
 * offsets, which lets a client's deliveries be compared with what the log holds for its channel without shipping
 * either list.
 */
import { performance } from "node:perf_hooks";

/** Epoch milliseconds with sub-millisecond precision; every process of the bench runs on this machine's one clock. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Latencies in ms, bucketed to 10 µs below 10 ms, 0.1 ms below 100 ms and 1 ms above: [bucket, count] pairs. */
export type Histogram = { buckets: Record<string, number>; count: number; max: number; sum: number };

export function histogram(): Histogram {
  return { buckets: {}, count: 0, max: 0, sum: 0 };
}

function bucketOf(ms: number): string {
  if (ms < 10) return (Math.round(ms * 100) / 100).toFixed(2);
  if (ms < 100) return (Math.round(ms * 10) / 10).toFixed(1);
  return Math.round(ms).toFixed(0);
}

export function record(h: Histogram, ms: number): void {
  const key = bucketOf(Math.max(0, ms));
  h.buckets[key] = (h.buckets[key] ?? 0) + 1;
  h.count++;
  h.sum += ms;
  if (ms > h.max) h.max = ms;
}

export function merge(into: Histogram, from: Histogram): Histogram {
  for (const [key, count] of Object.entries(from.buckets)) into.buckets[key] = (into.buckets[key] ?? 0) + count;
  into.count += from.count;
  into.sum += from.sum;
  into.max = Math.max(into.max, from.max);
  return into;
}

export type LatencySummary = { count: number; p50: number; p90: number; p99: number; max: number; mean: number };

export function summarise(h: Histogram): LatencySummary {
  const sorted = Object.entries(h.buckets)
    .map(([key, count]) => [Number(key), count] as const)
    .sort((a, b) => a[0] - b[0]);
  const at = (p: number) => {
    const rank = Math.max(1, Math.ceil(p * h.count));
    let seen = 0;
    for (const [value, count] of sorted) {
      seen += count;
      if (seen >= rank) return value;
    }
    return Number.NaN;
  };
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    count: h.count,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: round(h.max),
    mean: round(h.count === 0 ? 0 : h.sum / h.count),
  };
}

/**
 * A sequence of offsets folded into a count and a hash: two sequences with the same fingerprint are, but for a
 * 2^-32 chance, the same offsets in the same order. A client's deliveries on a channel and the log's events of that
 * channel (after the same position) must have the same one: nothing lost, nothing twice, nothing out of order.
 */
export type Fingerprint = { count: number; hash: number };

export function fingerprint(): Fingerprint {
  return { count: 0, hash: 0 };
}

export function fold(fp: Fingerprint, offset: number): void {
  fp.count++;
  fp.hash = (Math.imul(fp.hash, 31) + (offset | 0) + Math.floor(offset / 2 ** 32)) | 0;
}

export function sameFingerprint(a: Fingerprint | undefined, b: Fingerprint | undefined): boolean {
  return a !== undefined && b !== undefined && a.count === b.count && a.hash === b.hash;
}
