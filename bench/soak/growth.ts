/**
 * Whether the node under soak stayed flat: the bound each series must keep, and the verdict.
 *
 * The first fifth of the run, and at least its first 30 s (at most half of it), is warm-up and left out: the JIT, the
 * pools filling, V8 growing its heap to its working size. Of the samples after it, the first third gives the
 * baseline and the last third the end: their medians, so that one busy moment on a shared machine decides nothing;
 * for the heap, their minimums, the heap after the collections (its peaks are when the GC happened to run, a leak
 * lifts its floor). The end must stay within the baseline times a factor plus a slack (the slack covers small
 * baselines and noise over short runs):
 *
 * | series | bound on the end |
 * |---|---|
 * | RSS | ≤ baseline × 1.25 + 16 MB |
 * | heap used (floor) | ≤ baseline × 1.25 + 8 MB |
 * | active resources (process.getActiveResourcesInfo()) | ≤ baseline × 1.2 + 10 |
 * | event-loop delay p99 | ≤ baseline × 2 + 20 ms |
 *
 * RSS gets a quarter: in a 60 s run it is still climbing to its plateau (reached after a minute and a half at this
 * load; seen +14 % between the thirds of a healthy 60 s run), and over 30 minutes a quarter of ~330 MB still catches a
 * leak of 4 MB a minute.
 *
 * The heap is judged only when what is measured after warm-up spans 10 minutes or more: at the soak's load V8's
 * major collections come a minute or two apart (the 30-minute run's chart), so the floor of a shorter window is
 * wherever the sawtooth happened to be (a 60 s run failed on it: no major collection in its last 10 s). Short runs
 * (CI's 60 s) rely on RSS, which ratchets up when the heap outgrows its high-water mark, and on active resources.
 *
 * The slope of RSS and heap over the samples after warm-up (least squares, MB a minute) is reported beside, not
 * judged: over 60 s it is mostly noise, over 30 minutes a person reads it off the chart.
 */
import type { Sample } from "./node-metrics.ts";

export type Series = "rssMB" | "heapUsedMB" | "resources" | "eventLoopP99Ms";

export const BOUNDS: Record<Series, { label: string; factor: number; slack: number; unit: string }> = {
  rssMB: { label: "RSS", factor: 1.25, slack: 16, unit: "MB" },
  heapUsedMB: { label: "heap used (floor)", factor: 1.25, slack: 8, unit: "MB" },
  resources: { label: "active resources", factor: 1.2, slack: 10, unit: "" },
  eventLoopP99Ms: { label: "event-loop delay p99", factor: 2, slack: 20, unit: "ms" },
};

/** How long the measured part must be for the heap's floor to be judged (see above). */
export const HEAP_JUDGED_AFTER_SECONDS = 600;

export type Verdict = {
  series: Series;
  label: string;
  baseline: number;
  end: number;
  bound: number;
  ok: boolean;
  /** False when the run is too short for this series to say anything (the heap under 10 minutes). */
  judged: boolean;
  /** Least-squares slope after warm-up, per minute (RSS and heap only). */
  slopePerMinute?: number;
};

export function judge(samples: Sample[]): { verdicts: Verdict[]; warmupSamples: number } {
  const every = samples.length > 1 ? (samples.at(-1)!.t - samples[0]!.t) / (samples.length - 1) : 1;
  const warmupSamples = Math.min(
    Math.floor(samples.length / 2),
    Math.max(1, Math.floor(samples.length / 5), Math.ceil(30 / Math.max(every, 0.001))),
  );
  const measured = samples.slice(warmupSamples);
  if (measured.length < 3) throw new Error(`too few samples to judge (${samples.length}); run longer`);
  const third = Math.max(1, Math.floor(measured.length / 3));
  const measuredSpan = measured.at(-1)!.t - measured[0]!.t;
  const verdicts = (Object.keys(BOUNDS) as Series[]).map((series) => {
    const { label, factor, slack } = BOUNDS[series];
    const summary = series === "heapUsedMB" ? (values: number[]) => Math.min(...values) : median;
    const baseline = summary(measured.slice(0, third).map((s) => s[series]));
    const end = summary(measured.slice(-third).map((s) => s[series]));
    const bound = round(baseline * factor + slack);
    const judged = series !== "heapUsedMB" || measuredSpan >= HEAP_JUDGED_AFTER_SECONDS;
    const verdict: Verdict = {
      series,
      label,
      baseline: round(baseline),
      end: round(end),
      bound,
      ok: !judged || end <= bound,
      judged,
    };
    if (series === "rssMB" || series === "heapUsedMB")
      verdict.slopePerMinute = round(slope(measured.map((s) => [s.t / 60, s[series]])));
    return verdict;
  });
  return { verdicts, warmupSamples };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
