/** The bench's command line. */
import { WORKLOADS, type Workload } from "./types.ts";

export type BenchArgs = {
  n: number;
  batch: number;
  concurrency: number;
  idleMs: number;
  latencyCount: number;
  latencyIntervalMs: number;
  /** null: every system. */
  only: string[] | null;
  workloads: Workload[];
  smoke: boolean;
  /** Run a system's process again, up to this many times, while other processes used ≥ 1 CPU-s during its run. */
  retryNoisy: number;
  /** A saved run's JSON to render again instead of running anything. */
  report: string | null;
  /** Before each of a system's processes, wait up to this many seconds for the machine to go quiet (0: do not wait). */
  waitQuiet: number;
  /** Systems whose workloads run under the CPU profiler (profiles in bench/results/profiles/). */
  cpuProf: string[];
  /** Run every system this many times, round after round; each figure is the median. */
  rounds: number;
  help: boolean;
};

export const USAGE = `usage: npm run bench -- [options]

  --n <count>            tasks for enqueue and each drain (default 20000; 300 with --smoke)
  --latency <count>      single tasks for add→start latency (default 300; 30 with --smoke)
  --interval <ms>        time between latency tasks (default 10)
  --batch <size>         enqueue batch size (default 500)
  --concurrency <count>  worker concurrency (default 50)
  --idle <ms>            how long workers started on an empty store run idle before drain-producer, drain-self
                         and drain-resume add their tasks (default 250; a node that has run idle for a while,
                         polling an empty store, may take work differently from one just started)
  --only <a,b,...>       systems to run: sqlite-raw, conveyor-sqlite, postgres-raw, conveyor-postgres,
                         bullmq, pg-boss, graphile-worker (default all)
  --workloads <a,b>      enqueue, drain, drain-producer, drain-self, drain-resume, latency (default all;
                         drain always enqueues first; each drain-* variant runs in a process of its own)
  --smoke                tiny N, for CI: checks that every system runs every workload, in under a minute
  --wait-quiet <s>       before each of a system's processes, wait up to s seconds until other processes use
                         < 0.15 CPU (for a shared machine; default 0: do not wait)
  --retry-noisy <k>      run a system's process again (up to k more times) when other processes used ≥ 1 CPU-s
                         during its run, keeping the quietest attempt (default 0)
  --rounds <k>           run every system k times, one round after another, and report each figure's median
                         (default 1; the machine's speed drifts within minutes, and rounds spread it evenly)
  --report <file.json>   print a saved run's table again (and rewrite RESULTS.md from it, for a full run)
  --cpu-prof <a,b,...>   profile these systems' workloads (bench/results/profiles/<system>-<workload>.cpuprofile)
                         and print the heaviest functions; summarise again with node bench/profile.ts <file>
`;

export function parseArgs(argv: string[]): BenchArgs {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw usageError(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (name === "smoke" || name === "help") flags.set(name, "true");
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usageError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  const known = new Set([
    "n",
    "latency",
    "interval",
    "batch",
    "concurrency",
    "idle",
    "only",
    "workloads",
    "smoke",
    "cpu-prof",
    "wait-quiet",
    "retry-noisy",
    "report",
    "rounds",
    "help",
  ]);
  for (const name of flags.keys()) if (!known.has(name)) throw usageError(`unknown option --${name}`);
  const smoke = flags.has("smoke");
  const int = (name: string, fallback: number) => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw.replaceAll("_", "").replaceAll(",", ""));
    if (!Number.isSafeInteger(value) || value < 1) throw usageError(`--${name} must be a positive integer, got ${raw}`);
    return value;
  };
  const list = (name: string) =>
    flags
      .get(name)
      ?.split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "") ?? null;
  const workloads = (list("workloads") ?? [...WORKLOADS]) as Workload[];
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw usageError(`unknown workload ${w}`);
  return {
    n: int("n", smoke ? 300 : 20_000),
    batch: int("batch", 500),
    concurrency: int("concurrency", 50),
    idleMs: int("idle", 250),
    latencyCount: int("latency", smoke ? 30 : 300),
    latencyIntervalMs: int("interval", 10),
    only: list("only"),
    workloads,
    smoke,
    cpuProf: list("cpu-prof") ?? [],
    waitQuiet: flags.has("wait-quiet") ? int("wait-quiet", 0) : 0,
    report: flags.get("report") ?? null,
    retryNoisy: flags.has("retry-noisy") ? int("retry-noisy", 0) : 0,
    rounds: int("rounds", 1),
    help: flags.has("help"),
  };
}

function usageError(message: string): Error {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}
