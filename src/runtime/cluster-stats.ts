/**
 * The cluster's task throughput and timings from every node's 5-second buckets (stats-recorder.ts): per bucket time,
 * the counts summed and the histograms merged, then percentiles.
 */
import { emptyHistogram, histogramMerge, type Percentiles, percentilesOf, STATS_BUCKET_MS } from "../core/stats.ts";
import type { TaskStatsBucket } from "../store/store.ts";

export type StatsPoint = {
  at: Date;
  completed: number;
  failed: number;
  retried: number;
  runMs: Percentiles | null;
  waitMs: Percentiles | null;
};

export type ClusterStats = { bucketSeconds: number; buckets: StatsPoint[] };

export function clusterStats(rows: TaskStatsBucket[]): ClusterStats {
  const byTime = new Map<
    number,
    { completed: number; failed: number; retried: number; run: number[]; wait: number[] }
  >();
  for (const row of rows) {
    const key = row.at.getTime();
    let point = byTime.get(key);
    if (point === undefined) {
      point = { completed: 0, failed: 0, retried: 0, run: emptyHistogram(), wait: emptyHistogram() };
      byTime.set(key, point);
    }
    point.completed += row.completed;
    point.failed += row.failed;
    point.retried += row.retried;
    histogramMerge(point.run, row.run);
    histogramMerge(point.wait, row.wait);
  }
  const buckets = [...byTime.entries()]
    .sort(([a], [b]) => a - b)
    .map(([at, p]) => ({
      at: new Date(at),
      completed: p.completed,
      failed: p.failed,
      retried: p.retried,
      runMs: percentilesOf(p.run),
      waitMs: percentilesOf(p.wait),
    }));
  return { bucketSeconds: STATS_BUCKET_MS / 1000, buckets };
}
