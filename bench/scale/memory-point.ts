/** One reading of a process's memory with a number of tasks held running, and the growth they cost. */
export type MemoryPoint = { inFlight: number; rssMB: number; heapUsedMB: number };

/**
 * Megabytes per 1,000 tasks in flight: the least-squares slope over the readings (every reading counts, rather
 * than the last against the first, so one noisy reading moves it less). null with fewer than two distinct x.
 */
export function mbPerThousand(points: MemoryPoint[], figure: (p: MemoryPoint) => number): number | null {
  const xs = points.map((p) => p.inFlight / 1000);
  const ys = points.map(figure);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const mx = mean(xs);
  const my = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  return sxx === 0 ? null : Math.round((sxy / sxx) * 100) / 100;
}
