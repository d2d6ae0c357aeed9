/**
 * `npm run bench`: Conveyor (SQLite, PostgreSQL) and its peers (BullMQ, pg-boss, Graphile Worker), plus
 * each store's raw claim loop, through the same workloads in one run, one system after another, each in
 * processes of its own on fresh stores (one for enqueue, drain and latency, one per drain variant). Prints
 * the tables, writes JSON to bench/results/ and, for a full run, the tables to bench/RESULTS.md.
 *
 *   npm run bench                               all systems, N = 20,000
 *   npm run bench -- --n 50000 --only conveyor-sqlite,bullmq
 *   npm run bench -- --smoke                    N = 300, 30 latency tasks: a quick check that all of it runs
 *   npm run bench -- --only conveyor-sqlite --workloads enqueue,drain --cpu-prof conveyor-sqlite
 *   npm run bench -- --report bench/results/<file>.json   re-render a saved run (and RESULTS.md, for a full one)
 *
 * Exit status 1 when a system that could be set up failed mid-run (wrong count, timeout, crash); a system
 * that is unavailable (not installed, server unreachable, driver not written yet) is reported, not fatal.
 */
import { fork } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { parseArgs, USAGE } from "./lib/args.ts";
import { formatSummary } from "./profile.ts";
import { PG_URL } from "./lib/env.ts";
import { machineInfo } from "./lib/machine.ts";
import { otherCpuSeconds, sampleCpu, serverCpuSeconds, waitForQuiet } from "./lib/quiet.ts";
import { buildReport, QUIET_CPU_SECONDS } from "./lib/report.ts";
import { childWorkloads, mergeParts, type Part } from "./lib/parts.ts";
import { medianOfRounds } from "./lib/rounds.ts";
import { SYSTEMS } from "./lib/systems.ts";
import { WORKLOADS } from "./lib/types.ts";
import type { MachineInfo } from "./lib/machine.ts";
import type { RunSettings } from "./lib/report.ts";
import type { ChildJob, ChildMessage, SystemResult, Workload } from "./lib/types.ts";

type SavedRun = {
  startedAt: string;
  settings: RunSettings;
  workloads: Workload[];
  machine: MachineInfo;
  results: SystemResult[];
  /**
   * Every system and workload, no smoke, no profiling: a run for RESULTS.md. Absent in runs saved before the
   * drain variants.
   */
  complete?: boolean;
};

const BENCH_DIR = new URL("./", import.meta.url);
const RESULTS_DIR = new URL("./results/", BENCH_DIR);

// `--live`: the live stream's bench (bench/live/), a run of its own. Imported by computed path, so that the
// product's type-check of bench/*.ts never needs the peers in bench/node_modules.
if (process.argv.includes("--live")) {
  const live = new URL("./live/run.ts", import.meta.url);
  const { main } = (await import(live.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--live")));
}

// `--dashboard`: what the dashboard's requests cost at a small and a large table (bench/dashboard/).
if (process.argv.includes("--dashboard")) {
  const dashboard = new URL("./dashboard/run.ts", import.meta.url);
  const { main } = (await import(dashboard.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--dashboard")));
}

// `--dispatch`: dispatch's deliveries per second beside a bare undici loop, and bulk ingest (bench/dispatch/).
if (process.argv.includes("--dispatch")) {
  const dispatch = new URL("./dispatch/run.ts", import.meta.url);
  const { main } = (await import(dispatch.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--dispatch")));
}

// `--failover`: kill -9 → running elsewhere at the default timing, false rescues of a busy node, heartbeat load.
if (process.argv.includes("--failover")) {
  const failover = new URL("./failover/run.ts", import.meta.url);
  const { main } = (await import(failover.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--failover")));
}

// `--load`: 1,000 clients adding tasks and 200 listing them, against one node and two (bench/load/).
if (process.argv.includes("--load")) {
  const load = new URL("./load/run.ts", import.meta.url);
  const { main } = (await import(load.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--load")));
}

// `--scale`: drain by 1, 2, 3 worker processes, a table of finished tasks, HTTP producers, memory per task (bench/scale/).
if (process.argv.includes("--scale"))
  process.exit(await runScale(process.argv.slice(2).filter((arg) => arg !== "--scale")));

// `--soak`: one node under steady work for 30 minutes, its memory, handles and event-loop delay sampled (bench/soak/).
if (process.argv.includes("--soak")) {
  const soak = new URL("./soak/run.ts", import.meta.url);
  const { main } = (await import(soak.href)) as { main: (argv: string[]) => Promise<number> };
  process.exit(await main(process.argv.slice(2).filter((arg) => arg !== "--soak")));
}

const args = parseArgs(process.argv.slice(2));
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

if (args.report !== null) {
  // Re-render a run that was saved: its table again, and RESULTS.md when it was a full run.
  const saved = JSON.parse(readFileSync(args.report, "utf8")) as SavedRun;
  const report = buildReport(saved.results, saved.machine, saved.settings, new Date(saved.startedAt));
  process.stdout.write(`${report.markdown}\n`);
  const stamp = saved.startedAt.slice(0, 19).replaceAll(":", "-");
  // Before the drain variants, a full run had every system and its three workloads.
  const complete =
    saved.complete ??
    (!saved.settings.smoke && saved.results.length === SYSTEMS.length && saved.workloads.length === 3);
  if (complete) writeResultsMarkdown(report.markdown, `results/${stamp}.json`);
  process.exit(0);
}

const startedAt = new Date();
const runId = startedAt.getTime().toString(36);
const selected = SYSTEMS.filter((s) => args.only === null || args.only.includes(s.name));
const unknown = (args.only ?? []).filter((name) => !SYSTEMS.some((s) => s.name === name));
if (unknown.length > 0) {
  process.stderr.write(`unknown system(s): ${unknown.join(", ")}; known: ${SYSTEMS.map((s) => s.name).join(", ")}\n`);
  process.exit(2);
}
if (!existsSync(new URL("./node_modules/", BENCH_DIR))) {
  process.stderr.write(
    "bench/node_modules is missing: the peers will be unavailable. Install them with `npm install --prefix bench --no-audit --no-fund`.\n",
  );
}

const machine = await machineInfo();
process.stderr.write(
  `bench: N=${args.n}, ${selected.length} systems, run ${runId}; ${machine.nproc} CPUs, load ${machine.loadAverage}\n`,
);

const rounds: SystemResult[][] = selected.map(() => []);
for (let round = 0; round < args.rounds; round++) {
  if (args.rounds > 1) process.stderr.write(`round ${round + 1} of ${args.rounds}\n`);
  for (const [index, entry] of selected.entries())
    rounds[index]!.push(await runSystem(entry.name, round === 0 ? runId : `${runId}k${round}`));
}
const results = rounds.map(medianOfRounds);
await dropLeftoverSchemas(runId);

const settings = {
  n: args.n,
  batch: args.batch,
  concurrency: args.concurrency,
  idleMs: args.idleMs,
  latencyCount: args.latencyCount,
  latencyIntervalMs: args.latencyIntervalMs,
  smoke: args.smoke,
  rounds: args.rounds,
};

const report = buildReport(results, machine, settings, startedAt);
process.stdout.write(`\n${report.markdown}\n`);

mkdirSync(RESULTS_DIR, { recursive: true });
const stamp = startedAt.toISOString().slice(0, 19).replaceAll(":", "-");
const complete =
  !args.smoke && args.only === null && args.workloads.length === WORKLOADS.length && args.cpuProf.length === 0;
// Only full runs are kept (and committed); a smoke or partial run leaves its JSON under a git-ignored name.
const jsonFile = new URL(
  args.smoke ? "smoke-latest.json" : complete ? `${stamp}.json` : `partial-${stamp}.json`,
  RESULTS_DIR,
);
const json = {
  startedAt: startedAt.toISOString(),
  runId,
  settings,
  workloads: args.workloads,
  complete,
  machine,
  results,
  drainPaths: report.drainPaths,
  comparisons: report.comparisons,
  targets: report.targets,
};
writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
process.stderr.write(`\nwrote ${fileURLToPath(jsonFile)}\n`);
for (const file of results.flatMap((r) => r.profiles ?? [])) process.stderr.write(`\n${formatSummary(file, 20)}`);
if (complete) {
  writeResultsMarkdown(report.markdown, `results/${stamp}.json`);
  process.stderr.write(`wrote ${fileURLToPath(new URL("./RESULTS.md", BENCH_DIR))}\n`);
}
const failed = results.some((r) => r.status === "failed");
// The whole bench, full or smoke, goes on with the scale bench (its smoke keeps CI exercising it): one command for all.
const whole = args.only === null && args.workloads.length === WORKLOADS.length && args.cpuProf.length === 0;
const scaleStatus = whole ? await runScale(args.smoke ? ["--smoke"] : []) : 0;
process.exit(failed || scaleStatus !== 0 ? 1 : 0);

// ---- helpers --------------------------------------------------------------------------------------------

/** One system, once: a child process per group of workloads (see lib/parts.ts), each on a fresh store. */
async function runSystem(name: string, id: string): Promise<SystemResult> {
  const parts: Part[] = [];
  for (const [index, workloads] of childWorkloads(args.workloads).entries()) {
    const result = await runPart(name, workloads, index === 0 ? id : `${id}v${index}`);
    parts.push({ workloads, result });
    if (result.status === "unavailable") break; // the next parts could not be set up either
  }
  return mergeParts(parts);
}

/** One child process: run again (up to --retry-noisy times) while other processes were busy; the quietest attempt. */
async function runPart(name: string, workloads: Workload[], id: string): Promise<SystemResult> {
  const label = `${name} ${workloads.join(", ")}`;
  let kept: SystemResult | null = null;
  for (let attempt = 0; attempt <= args.retryNoisy; attempt++) {
    const job: ChildJob = {
      system: name,
      n: args.n,
      batch: args.batch,
      latencyCount: args.latencyCount,
      latencyIntervalMs: args.latencyIntervalMs,
      concurrency: args.concurrency,
      idleMs: args.idleMs,
      workloads,
      runId: attempt === 0 ? id : `${id}r${attempt}`,
      ...(args.cpuProf.includes(name) ? { profileDir: fileURLToPath(new URL("./profiles/", RESULTS_DIR)) } : {}),
    };
    if (args.waitQuiet > 0) {
      const waited = await waitForQuiet(args.waitQuiet);
      if (waited === null) process.stderr.write(`  the machine stayed busy for ${args.waitQuiet} s; running anyway\n`);
      else if (waited > 1) process.stderr.write(`  waited ${waited} s for the machine to go quiet\n`);
    }
    process.stderr.write(`▶ ${label}${attempt > 0 ? ` (again: the last attempt was noisy)` : ""}\n`);
    const result = await measured(job);
    result.attempts = attempt + 1;
    const note = result.status === "ok" ? "" : `: ${result.reason ?? ""}`;
    const lacking = result.notApplicable ?? [];
    const outcome =
      lacking.length === workloads.length
        ? "not applicable (no such path)"
        : `${result.status}${note}${lacking.length > 0 ? `, no path for ${lacking.join(", ")}` : ""}`;
    const noise =
      result.otherCpuSeconds == null
        ? ""
        : `; CPU-s: own ${result.cpuSeconds}, servers ${result.serverCpuSeconds}, other processes ${result.otherCpuSeconds}`;
    process.stderr.write(`  ${label} ${outcome} (${result.wallSeconds} s${noise})\n`);
    // Keep the quietest attempt; stop as soon as one is quiet (or the system is not ok: noise is not its problem).
    if (kept === null || (result.otherCpuSeconds ?? 0) < (kept.otherCpuSeconds ?? 0)) kept = { ...result };
    kept.attempts = attempt + 1;
    if (result.status !== "ok" || (result.otherCpuSeconds ?? 0) < QUIET_CPU_SECONDS) break;
  }
  return kept!;
}

/** Runs one system's child process and records the CPU it, the servers and everything else used meanwhile. */
async function measured(job: ChildJob): Promise<SystemResult> {
  const t0 = Date.now();
  const before = sampleCpu();
  const result = await runChild(job);
  result.wallSeconds = Math.round((Date.now() - t0) / 100) / 10;
  const after = sampleCpu();
  result.otherCpuSeconds = otherCpuSeconds(before, after, result.cpuSeconds ?? 0);
  result.serverCpuSeconds = serverCpuSeconds(before, after);
  return result;
}

/** Runs one system in a child process; a crash, a hang or a silent exit becomes a failed result. */
function runChild(job: ChildJob): Promise<SystemResult> {
  const child = fork(fileURLToPath(new URL("./child.ts", BENCH_DIR)), [JSON.stringify(job)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const fallback = SYSTEMS.find((s) => s.name === job.system)!;
  const failed = (reason: string): SystemResult => ({
    info: { ...fallback, settings: "" },
    status: "failed",
    reason,
    n: job.n,
  });
  const timeoutMs = args.smoke ? 45_000 : 90_000 + job.n * 20;
  return new Promise((resolve) => {
    let result: SystemResult | null = null;
    const timer = setTimeout(() => {
      result ??= failed(`no result after ${timeoutMs / 1000} s; killed`);
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("message", (message: ChildMessage) => {
      if (message.type === "result") result ??= message.result;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(result ?? failed(`process exited (${signal ?? `code ${code}`}) without a result`));
    });
  });
}

/** The scale bench (bench/scale/run.ts), imported by computed path as the other benches of their own are. */
async function runScale(argv: string[]): Promise<number> {
  const scale = new URL("./scale/run.ts", import.meta.url);
  const { main } = (await import(scale.href)) as { main: (argv: string[]) => Promise<number> };
  return main(argv);
}

/** Drops this run's schemas that a crashed or killed system left behind. */
async function dropLeftoverSchemas(id: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ name: string }>(
      `SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE 'bench\\_%' AND nspname LIKE '%\\_' || $1 || '%'`,
      [id],
    );
    for (const { name } of rows) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } catch {
    // No PostgreSQL: nothing was created there either.
  } finally {
    await client.end().catch(() => {});
  }
}

/** Replaces the generated part of RESULTS.md, keeping whatever was written around it by hand. */
function writeResultsMarkdown(table: string, jsonPath: string): void {
  const file = new URL("./RESULTS.md", BENCH_DIR);
  const begin = "<!-- bench:begin (generated by `npm run bench`; edit outside these markers) -->";
  const end = "<!-- bench:end -->";
  const generated = `${begin}\n${table.trimEnd()}\n\nJSON: [${jsonPath}](${jsonPath})\n${end}`;
  const current = existsSync(file)
    ? readFileSync(file, "utf8")
    : `# Benchmark results\n\nThe latest full run of \`npm run bench\`.\n\n${begin}\n${end}\n`;
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  const next =
    from === -1 || to === -1
      ? `${current.trimEnd()}\n\n${generated}\n`
      : current.slice(0, from) + generated + current.slice(to + end.length);
  writeFileSync(file, next);
}
