/**
 * The fuzzing harness shared by the surfaces (http, live, cli): how many cases to run, with which seed, and a
 * report of each surface's run. Two callers: the `node --test` files next to this one (a few hundred cases per
 * surface, the seed logged so that a failure can be replayed with `FUZZ_SEED=<seed>`), and `npm run fuzz`
 * (test/fuzz/run.ts: 10,000 per surface, a report at the end).
 *
 * A surface is a list of properties; each gets its share of the surface's cases. A property is an fast-check
 * async property whose predicate throws (node:assert) on a failure; fast-check shrinks it to the smallest case.
 */
import fc from "fast-check";

export type FuzzProperty = { name: string; property: fc.IAsyncProperty<any>; weight?: number };

export type SurfaceReport = {
  surface: string;
  property: string;
  seed: number;
  runs: number;
  failed: boolean;
  ms: number;
  failure?: string;
};

/** Cases per surface: FUZZ_RUNS, else the caller's default (the tests' few hundred; the runner's 10,000). */
export function runsFromEnv(fallback: number): number {
  const text = process.env.FUZZ_RUNS;
  if (text === undefined || text === "") return fallback;
  const runs = Number(text);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got "${text}"`);
  return runs;
}

/** The seed to run with: FUZZ_SEED to replay a failure, else a fresh one (logged by the caller). */
export function seedFromEnv(): number {
  const text = process.env.FUZZ_SEED;
  if (text === undefined || text === "") return (Math.random() * 2 ** 31) | 0;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${text}"`);
  return seed;
}

/**
 * Runs every property of a surface, `runs` cases shared out by weight, with one seed; returns a report per
 * property (a failure is in the report with fast-check's counterexample and the seed and path to replay it).
 */
export async function runSurface(
  surface: string,
  properties: FuzzProperty[],
  options: { runs: number; seed: number; log?: (line: string) => void },
): Promise<SurfaceReport[]> {
  const total = properties.reduce((sum, p) => sum + (p.weight ?? 1), 0);
  const reports: SurfaceReport[] = [];
  for (const { name, property, weight = 1 } of properties) {
    const runs = Math.max(1, Math.round((options.runs * weight) / total));
    const started = performance.now();
    const details = await fc.check(property, { numRuns: runs, seed: options.seed, endOnFailure: false });
    const report: SurfaceReport = {
      surface,
      property: name,
      seed: options.seed,
      runs: details.numRuns,
      failed: details.failed,
      ms: Math.round(performance.now() - started),
    };
    if (details.failed) {
      report.failure = [
        `${surface} / ${name}: failed after ${details.numRuns} cases (${details.numShrinks} shrinks)`,
        `replay: FUZZ_SEED=${details.seed} (path ${details.counterexamplePath})`,
        `counterexample: ${clip(fc.stringify(details.counterexample), 3000)}`,
        `error: ${errorText(details.errorInstance)}`,
      ].join("\n");
    }
    options.log?.(
      `${surface} / ${name}: ${report.runs} cases, ${report.failed ? "FAILED" : "ok"}, ${report.ms} ms, seed ${report.seed}`,
    );
    reports.push(report);
  }
  return reports;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return clip((error.stack ?? error.message).split("\n").slice(0, 12).join("\n"), 4000);
  return clip(String(error), 4000);
}

/** Long generated values (bodies of a megabyte) cut to a readable length. */
function clip(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length)}… (${text.length} characters)`;
}

/** Fails the run if the process sees an unhandled rejection or an uncaught exception while `body` runs. */
export async function withCrashWatch<T>(body: () => Promise<T>): Promise<T> {
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  process.on("unhandledRejection", onCrash);
  process.on("uncaughtException", onCrash);
  try {
    const result = await body();
    if (crashes.length > 0) throw new Error(`the process crashed while fuzzing: ${errorText(crashes[0])}`);
    return result;
  } finally {
    process.off("unhandledRejection", onCrash);
    process.off("uncaughtException", onCrash);
  }
}
