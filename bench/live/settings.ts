/** The live bench's command line: `npm run bench -- --live [options]`. */

export type LiveSystem = "conveyor" | "socket.io";
export const LIVE_SYSTEMS: readonly LiveSystem[] = ["conveyor", "socket.io"];

export type LiveSettings = {
  /** Clients on application channels, spread evenly over the channels and the two servers. */
  clients: number;
  channels: number;
  /** Events per second, all nodes together (each node publishes its share). */
  rate: number;
  seconds: number;
  /** Tasks per second the drain adds (all nodes together); Socket.IO emits as many task events as they made. */
  taskRate: number;
  /** Clients on the `tasks` channel. */
  tasksClients: number;
  /** Events the catch-up client misses while away. */
  catchUp: number;
  /** Load generator processes the clients are shared among. */
  loadgens: number;
  /** Conveyor's liveReplayLimit: larger than the catch-up's gap, or the client would be told to reload. */
  replayLimit: number;
  only: LiveSystem[];
  /** Before each system, wait up to this many seconds for the machine to go quiet (0: do not wait). */
  waitQuiet: number;
  /** Run a system again, up to this many times, while other processes used ≥ 1 CPU-s in its steady state. */
  retryNoisy: number;
  smoke: boolean;
  cpuProf: boolean;
  report: string | null;
};

export const LIVE_USAGE = `usage: npm run bench -- --live [options]

  --clients <n>        clients on application channels (default 2000; 40 with --smoke)
  --channels <n>       application channels, each followed by clients / channels clients (default 100; 4)
  --rate <n>           events per second over all channels, half from each node (default 1000; 100)
  --seconds <n>        how long the load runs (default 30; 2)
  --task-rate <n>      tasks per second the drain adds, half on each node (default 100; 20)
  --tasks-clients <n>  clients on the busy tasks channel (default 20; 2)
  --catch-up <n>       events the catch-up client misses while away (default 100000; 1000)
  --loadgens <n>       load generator processes (default 2; 1)
  --only <a,b>         conveyor, socket.io (default both)
  --wait-quiet <s>     before each system, wait up to s seconds until other processes use < 0.15 CPU (a shared
                       machine's other work lands in the figures: the CPU row reports it, noisy at ≥ 1 CPU-s)
  --retry-noisy <k>    run a system again (up to k more times) while its steady state was noisy; keep the quietest
  --smoke              tiny numbers: checks in seconds that all of it runs (what CI runs)
  --cpu-prof           profile the server processes (bench/results/profiles/live-<system>/) and print the heaviest
                       functions
  --report <file>      print a saved live run's table again (and rewrite its RESULTS.md section, for a full run)
`;

export function parseLiveArgs(argv: string[]): LiveSettings {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) usage(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (["smoke", "cpu-prof", "help"].includes(name)) flags.set(name, "true");
    else flags.set(name, inline ?? argv[++i] ?? usage(`--${name} needs a value`));
  }
  const known = [
    "clients",
    "channels",
    "rate",
    "seconds",
    "task-rate",
    "tasks-clients",
    "catch-up",
    "loadgens",
    "wait-quiet",
    "retry-noisy",
  ];
  for (const name of flags.keys())
    if (![...known, "only", "smoke", "cpu-prof", "report", "help"].includes(name)) usage(`unknown option --${name}`);
  if (flags.has("help")) {
    process.stdout.write(LIVE_USAGE);
    process.exit(0);
  }
  const smoke = flags.has("smoke");
  const int = (name: string, full: number, tiny: number) => {
    const raw = flags.get(name);
    if (raw === undefined) return smoke ? tiny : full;
    const value = Number(raw.replaceAll("_", "").replaceAll(",", ""));
    if (!Number.isSafeInteger(value) || value < 1) usage(`--${name} must be a positive integer, got ${raw}`);
    return value;
  };
  const only = (flags.get("only")?.split(",") ?? [...LIVE_SYSTEMS]) as LiveSystem[];
  for (const name of only) if (!LIVE_SYSTEMS.includes(name)) usage(`unknown system ${name}`);
  const catchUp = int("catch-up", 100_000, 1000);
  return {
    clients: int("clients", 2000, 40),
    channels: int("channels", 100, 4),
    rate: int("rate", 1000, 100),
    seconds: int("seconds", 30, 2),
    taskRate: int("task-rate", 100, 20),
    tasksClients: int("tasks-clients", 20, 2),
    catchUp,
    loadgens: int("loadgens", 2, 1),
    replayLimit: catchUp * 2,
    only,
    waitQuiet: flags.has("wait-quiet") ? int("wait-quiet", 0, 0) : 0,
    retryNoisy: flags.has("retry-noisy") ? int("retry-noisy", 0, 0) : 0,
    smoke,
    cpuProf: flags.has("cpu-prof"),
    report: flags.get("report") ?? null,
  };
}

function usage(message: string): never {
  process.stderr.write(`${message}\n\n${LIVE_USAGE}`);
  process.exit(2);
}
