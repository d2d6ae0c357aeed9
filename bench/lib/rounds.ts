/**
 * Several rounds of one run: every system once per round, round after round, so that a machine that speeds up
 * or slows down during the run (this one does, by a third within minutes) weighs on every system alike. Each
 * figure of a system is then the median of its rounds.
 */
import { DRAIN_VARIANTS, type DrainFigures, type DrainVariant, type SystemResult } from "./types.ts";

/** One system's rounds as one result: each workload's figures from the round with the median value. */
export function medianOfRounds(rounds: SystemResult[]): SystemResult {
  if (rounds.length === 1) return rounds[0]!;
  // A round that broke decides: its failure is the result (an unavailable system is unavailable in every round).
  const broken = rounds.find((r) => r.status !== "ok");
  if (broken !== undefined) return { ...broken, rounds: { count: rounds.length, enqueue: [], drain: [], p50: [] } };
  const enqueue = medianBy(rounds, (r) => r.enqueue?.perSecond);
  const drain = medianBy(rounds, (r) => r.drain?.perSecond);
  const latency = medianBy(rounds, (r) => r.latency?.p50);
  const values = (pick: (r: SystemResult) => number | undefined) =>
    rounds.map(pick).filter((v): v is number => v !== undefined);
  const drainVariants: Partial<Record<DrainVariant, DrainFigures>> = {};
  const drainVariantRounds: Partial<Record<DrainVariant, number[]>> = {};
  for (const variant of DRAIN_VARIANTS) {
    const rate = (r: SystemResult) => r.drainVariants?.[variant]?.perSecond;
    const median = medianBy(rounds, rate)?.drainVariants?.[variant];
    if (median === undefined) continue;
    drainVariants[variant] = median;
    drainVariantRounds[variant] = values(rate);
  }
  const hasVariants = Object.keys(drainVariants).length > 0;
  return {
    ...rounds[0]!,
    ...(enqueue?.enqueue ? { enqueue: enqueue.enqueue } : {}),
    ...(drain?.drain ? { drain: drain.drain } : {}),
    ...(hasVariants ? { drainVariants } : {}),
    ...(latency?.latency ? { latency: latency.latency } : {}),
    // The noisiest round flags the row.
    otherCpuSeconds: Math.max(...rounds.map((r) => r.otherCpuSeconds ?? 0)),
    attempts: Math.max(...rounds.map((r) => r.attempts ?? 1)),
    rounds: {
      count: rounds.length,
      enqueue: values((r) => r.enqueue?.perSecond),
      drain: values((r) => r.drain?.perSecond),
      p50: values((r) => r.latency?.p50),
      ...(hasVariants ? { drainVariants: drainVariantRounds } : {}),
    },
  };
}

/** The result whose value is the median (the lower of the two middle ones for an even count). */
function medianBy(results: SystemResult[], value: (r: SystemResult) => number | undefined): SystemResult | undefined {
  const measured = results.filter((r) => value(r) !== undefined).sort((a, b) => value(a)! - value(b)!);
  return measured[Math.floor((measured.length - 1) / 2)];
}
