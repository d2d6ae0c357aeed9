/**
 * The command line under fuzzing (test/fuzz/cli-surface.ts): flags and environment variables, in process, a few
 * hundred cases; `npm run fuzz` runs 10,000. Replay a failure with `FUZZ_SEED=<seed> node --test test/fuzz/cli.test.ts`.
 */
import { test } from "node:test";
import { cliProperties } from "./cli-surface.ts";
import { runsFromEnv, runSurface, seedFromEnv, withCrashWatch } from "./harness.ts";

test("fuzz: the command line's flags and environment", async (t) => {
  const seed = seedFromEnv();
  t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const cli = cliProperties();
  try {
    const reports = await withCrashWatch(() =>
      runSurface("cli", cli.properties, { runs: runsFromEnv(300), seed, log: (line) => t.diagnostic(line) }),
    );
    const failures = reports.filter((r) => r.failed).map((r) => r.failure);
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  } finally {
    cli.close();
  }
});
