/**
 * Task timings as histograms: counts over fixed bounds, so that buckets from several nodes and seconds merge by
 * adding their counts, and percentiles come out of the merged counts (within a bound's width).
 */

/** Upper bounds, in ms, of the histograms' buckets; the last bucket holds everything above the last bound. */
export const STATS_BOUNDS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 1_800_000,
] as const;

/** How long each node's statistics bucket is. */
export const STATS_BUCKET_MS = 5_000;

export function emptyHistogram(): number[] {
  return new Array(STATS_BOUNDS_MS.length + 1).fill(0);
}

export function histogramAdd(histogram: number[], ms: number): void {
  let i = 0;
  while (i < STATS_BOUNDS_MS.length && ms > STATS_BOUNDS_MS[i]!) i++;
  histogram[i]!++;
}

export function histogramMerge(into: number[], from: readonly number[]): void {
  for (let i = 0; i < into.length; i++) into[i]! += from[i] ?? 0;
}

/**
 * The `q`-quantile (0..1) of a histogram, as the upper bound of the bucket it falls in (the last bound doubled for
 * the open bucket); null when it counts nothing.
 */
export function histogramQuantile(histogram: readonly number[], q: number): number | null {
  const total = histogram.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= rank) return STATS_BOUNDS_MS[i] ?? 2 * STATS_BOUNDS_MS[STATS_BOUNDS_MS.length - 1]!;
  }
  return null;
}

export type Percentiles = { p50: number; p95: number; p99: number };

export function percentilesOf(histogram: readonly number[]): Percentiles | null {
  const p50 = histogramQuantile(histogram, 0.5);
  if (p50 === null) return null;
  return { p50, p95: histogramQuantile(histogram, 0.95)!, p99: histogramQuantile(histogram, 0.99)! };
}
