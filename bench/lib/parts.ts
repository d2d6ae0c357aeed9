/**
 * One system's run as several child processes: enqueue, drain and latency share one (the drain works what
 * enqueue added; the latency tasks go to the worker the drain left idle), and each drain variant gets one of
 * its own, on a fresh store with workers of its own. The parts' results are put back together as one.
 */
import { isDrainVariant, type SystemResult, type Workload } from "./types.ts";

/** The workloads of each child process, in the order they run. */
export function childWorkloads(workloads: readonly Workload[]): Workload[][] {
  const shared = workloads.filter((w) => !isDrainVariant(w));
  return [...(shared.length > 0 ? [shared] : []), ...workloads.filter(isDrainVariant).map((w) => [w])];
}

export type Part = { workloads: Workload[]; result: SystemResult };

/**
 * The parts as one result: each figure from the part that measured it; CPU and wall time added up; the noise
 * of the noisiest part (each part is retried on its own); a broken part breaks the whole, naming its workload.
 */
export function mergeParts(parts: Part[]): SystemResult {
  if (parts.length === 1) return parts[0]!.result;
  const results = parts.map((p) => p.result);
  const first = results[0]!;
  const merged: SystemResult = {
    ...first,
    // A child that crashed reports no settings; any other part knows them.
    info: results.find((r) => r.info.settings !== "")?.info ?? first.info,
    status: "ok",
  };
  delete merged.reason;
  for (const r of results) {
    if (r.enqueue) merged.enqueue = r.enqueue;
    if (r.drain) merged.drain = r.drain;
    if (r.latency) merged.latency = r.latency;
    if (r.drainVariants) merged.drainVariants = { ...merged.drainVariants, ...r.drainVariants };
  }
  const notApplicable = results.flatMap((r) => r.notApplicable ?? []);
  if (notApplicable.length > 0) merged.notApplicable = notApplicable;
  else delete merged.notApplicable;
  const profiles = results.flatMap((r) => r.profiles ?? []);
  if (profiles.length > 0) merged.profiles = profiles;

  const broken = parts.filter((p) => p.result.status !== "ok");
  if (broken.length > 0) {
    merged.status = broken.some((p) => p.result.status === "failed") ? "failed" : "unavailable";
    merged.reason = broken.map((p) => `${p.workloads.join(", ")}: ${p.result.reason ?? p.result.status}`).join("; ");
  }

  merged.cpuSeconds = round2(sum(results.map((r) => r.cpuSeconds)) ?? 0);
  merged.serverCpuSeconds = nullableRound2(sum(results.map((r) => r.serverCpuSeconds)));
  merged.otherCpuSeconds = nullableRound2(max(results.map((r) => r.otherCpuSeconds)));
  merged.wallSeconds = Math.round((sum(results.map((r) => r.wallSeconds)) ?? 0) * 10) / 10;
  merged.attempts = max(results.map((r) => r.attempts)) ?? 1;
  return merged;
}

/** The sum of the known values; null when none is known (CPU figures are null off Linux). */
function sum(values: (number | null | undefined)[]): number | null {
  const known = values.filter((v): v is number => typeof v === "number");
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

function max(values: (number | null | undefined)[]): number | null {
  const known = values.filter((v): v is number => typeof v === "number");
  return known.length === 0 ? null : Math.max(...known);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function nullableRound2(x: number | null): number | null {
  return x === null ? null : round2(x);
}
