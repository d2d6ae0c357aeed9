/**
 * The HTTP API under fuzzing (test/fuzz/http-surface.ts): a few hundred cases on SQLite and a shorter pass on
 * PostgreSQL (whose text and jsonb refuse what SQLite keeps); `npm run fuzz` runs 10,000 per surface. The seed is
 * logged: replay a failure with `FUZZ_SEED=<seed> node --test test/fuzz/http.test.ts`.
 */
import { test } from "node:test";
import { testStores } from "../../src/runtime/fixtures/test-node.ts";
import { fuzzNode } from "./fuzz-node.ts";
import { runsFromEnv, runSurface, seedFromEnv, withCrashWatch } from "./harness.ts";
import { httpProperties } from "./http-surface.ts";

const RUNS = { sqlite: 300, postgres: 120 } as const;

for (const store of await testStores("fuzz: the HTTP API")) {
  test(`fuzz: the HTTP API on ${store}`, async (t) => {
    const seed = seedFromEnv();
    t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const node = await fuzzNode(store);
    try {
      const reports = await withCrashWatch(async () =>
        runSurface(`http-${store}`, await httpProperties(node), {
          runs: runsFromEnv(RUNS[store]),
          seed,
          log: (line) => t.diagnostic(line),
        }),
      );
      const failures = reports.filter((r) => r.failed).map((r) => r.failure);
      if (failures.length > 0) throw new Error(failures.join("\n\n"));
    } finally {
      await node.close();
    }
  });
}

test("fuzz: the HTTP API on a running SQLite node (workers, scheduler, deliveries to a loopback receiver)", async (t) => {
  const seed = seedFromEnv();
  t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const node = await fuzzNode("sqlite", { start: true });
  try {
    const reports = await withCrashWatch(async () =>
      runSurface("http-running", await httpProperties(node), {
        runs: runsFromEnv(150),
        seed,
        log: (line) => t.diagnostic(line),
      }),
    );
    const failures = reports.filter((r) => r.failed).map((r) => r.failure);
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  } finally {
    await node.close();
  }
});
