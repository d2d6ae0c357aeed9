/**
 * The live stream under fuzzing (test/fuzz/live-surface.ts): WebSocket frames and SSE parameters, a few hundred
 * cases; `npm run fuzz` runs 10,000. Replay a failure with `FUZZ_SEED=<seed> node --test test/fuzz/live.test.ts`.
 */
import { after, before, test } from "node:test";
import { type FuzzNode, fuzzNode } from "./fuzz-node.ts";
import { runsFromEnv, runSurface, seedFromEnv, withCrashWatch } from "./harness.ts";
import { liveProperties } from "./live-surface.ts";

let node: FuzzNode;
before(async () => (node = await fuzzNode("sqlite", { listen: true })));
after(() => node.close());

test("fuzz: the live stream (WebSocket and SSE) on SQLite", async (t) => {
  const seed = seedFromEnv();
  t.diagnostic(`seed ${seed} (replay with FUZZ_SEED=${seed})`);
  const reports = await withCrashWatch(async () =>
    runSurface("live", await liveProperties(node), { runs: runsFromEnv(300), seed, log: (line) => t.diagnostic(line) }),
  );
  const failures = reports.filter((r) => r.failed).map((r) => r.failure);
  if (failures.length > 0) throw new Error(failures.join("\n\n"));
});
