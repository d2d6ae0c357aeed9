/**
 * The HTTP API under fuzzing (test/fuzz/http-surface.ts), a few hundred cases on SQLite; `npm run fuzz` runs
 * 10,000. The seed is logged: replay a failure with `FUZZ_SEED=<seed> node --test test/fuzz/http.test.ts`.
 */
import { after, before, test } from "node:test";
import { type FuzzNode, fuzzNode } from "./fuzz-node.ts";
import { runsFromEnv, runSurface, seedFromEnv, withCrashWatch } from "./harness.ts";
import { httpProperties } from "./http-surface.ts";

let node: FuzzNode;
before(async () => (node = await fuzzNode("sqlite")));
after(() => node.close());

test("fuzz: the HTTP API on SQLite", async (t) => {
  const seed = seedFromEnv();
  t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const reports = await withCrashWatch(async () =>
    runSurface("http", await httpProperties(node), { runs: runsFromEnv(300), seed, log: (line) => t.diagnostic(line) }),
  );
  const failures = reports.filter((r) => r.failed).map((r) => r.failure);
  if (failures.length > 0) throw new Error(failures.join("\n\n"));
});
