/**
 * `npm run fuzz`: every surface, 10,000 cases each by default, with progress as it goes and a report at the end
 * (cases, failures with their seed and counterexample, time). Exit code 1 when anything failed.
 *
 *   npm run fuzz                       # http (not started, then running), live, cli, http on PostgreSQL
 *   npm run fuzz -- --runs 2000 --seed 42 --surface http
 *
 * A failing seed is replayed with `--seed <seed>` (or FUZZ_SEED=<seed> on the test file), then written down as a
 * plain test of the case it found.
 */
import { parseArgs } from "node:util";
import { postgresAvailable } from "../support/postgres.ts";
import { cliProperties } from "./cli-surface.ts";
import { fuzzNode } from "./fuzz-node.ts";
import { runSurface, type SurfaceReport, withCrashWatch } from "./harness.ts";
import { httpProperties } from "./http-surface.ts";
import { liveProperties } from "./live-surface.ts";

const SURFACES = ["http", "http-running", "live", "cli", "http-postgres"] as const;

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "10000" },
    seed: { type: "string" },
    surface: { type: "string", multiple: true },
  },
});
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got "${values.runs}"`);
const seed = values.seed === undefined ? (Math.random() * 2 ** 31) | 0 : Number(values.seed);
const chosen = values.surface ?? [...SURFACES];
for (const name of chosen)
  if (!(SURFACES as readonly string[]).includes(name))
    throw new Error(`unknown surface "${name}"; one of ${SURFACES.join(", ")}`);

const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
log(`fuzzing ${chosen.join(", ")}: ${runs} cases per surface, seed ${seed}`);
const reports: SurfaceReport[] = [];
const started = performance.now();

await withCrashWatch(async () => {
  for (const surface of chosen) {
    if (surface === "http" || surface === "http-postgres" || surface === "http-running") {
      if (surface === "http-postgres" && !(await postgresAvailable())) {
        log("http-postgres: skipped, PostgreSQL does not answer");
        continue;
      }
      const node = await fuzzNode(surface === "http-postgres" ? "postgres" : "sqlite", {
        start: surface === "http-running",
      });
      try {
        reports.push(...(await runSurface(surface, await httpProperties(node), { runs, seed, log })));
        log(
          `${surface}: the loopback receiver got ${node.receiver.requests.length} requests; dialled outside loopback: ${node.dialled.length === 0 ? "nothing" : node.dialled.join(", ")}`,
        );
      } finally {
        await node.close();
      }
    } else if (surface === "live") {
      const node = await fuzzNode("sqlite", { listen: true });
      try {
        reports.push(...(await runSurface(surface, await liveProperties(node), { runs, seed, log })));
      } finally {
        await node.close();
      }
    } else {
      const cli = cliProperties();
      try {
        reports.push(...(await runSurface(surface, cli.properties, { runs, seed, log })));
      } finally {
        cli.close();
      }
    }
  }
});

const failed = reports.filter((r) => r.failed);
console.log("\nsurface / property                                                    cases  result      ms");
for (const r of reports) {
  console.log(
    `${`${r.surface} / ${r.property}`.padEnd(68).slice(0, 68)} ${String(r.runs).padStart(6)}  ${(r.failed ? "FAILED" : "ok").padEnd(6)} ${String(r.ms).padStart(7)}`,
  );
}
const total = reports.reduce((sum, r) => sum + r.runs, 0);
console.log(
  `\n${total} cases in ${Math.round((performance.now() - started) / 1000)} s, seed ${seed}: ${failed.length === 0 ? "no failures" : `${failed.length} failing properties`}`,
);
for (const r of failed) console.log(`\n${r.failure}`);
process.exitCode = failed.length === 0 ? 0 : 1;
