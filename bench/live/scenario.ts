/**
 * One system through the live workload, start to finish, from the parent process:
 *
 * 1. two servers (Conveyor nodes on one fresh PostgreSQL schema, or Socket.IO servers on one Redis), each in a
 *    process of its own, and the load generators;
 * 2. the clients connect (each on one channel, half on each server) and each server's RSS is taken before and
 *    after: the memory a connection costs;
 * 3. the steady state: both servers publish their half of the events, round-robin over the channels, for the
 *    set time, while a drain keeps the `tasks` channel busy; then every client's deliveries are checked against
 *    what was published (and, for Conveyor, against what the log holds for its channel);
 * 4. the catch-up: a client leaves, misses `catchUp` events, and comes back to the other server with its last
 *    position; the time until it has them all.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { PG_URL, REDIS_URL } from "../lib/env.ts";
import { sampleCpu } from "../lib/quiet.ts";
import type { ClientReport, Position } from "./clients.ts";
import { postgresBackendsCpu, processesCpu } from "./db-cpu.ts";
import { type Peer, startChild } from "./ipc.ts";
import type { CatchUp, ClientSpec, LoadReport } from "./load.ts";
import type { LoopDelay } from "./node-stats.ts";
import type { PublishOutcome } from "./publisher.ts";
import type { LiveSettings, LiveSystem } from "./settings.ts";
import {
  type Fingerprint,
  type Histogram,
  histogram,
  type LatencySummary,
  merge,
  sameFingerprint,
  summarise,
} from "./stats.ts";

export type Delivery = {
  clients: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  reconnects: number;
  /** Conveyor: clients whose deliveries are not exactly the log's events of their channel (null: no log). */
  unlikeLog: number | null;
};

export type LiveResult = {
  system: LiveSystem;
  status: "ok" | "failed" | "unavailable";
  reason?: string;
  settings: string;
  connections: number[];
  published: { events: number; failed: number; seconds: number; behindMax: number; callMs: LatencySummary } | null;
  latency: LatencySummary | null;
  /** Conveyor: publish → the node's live feed hands the event out (in-process, one channel, both nodes). */
  handedOut?: LatencySummary;
  /** The same, apart for events published on the client's own server and on the other one. */
  latencyBySource: { sameServer: LatencySummary; otherServer: LatencySummary } | null;
  delivery: Delivery | null;
  tasks: (Delivery & { eventsPerSecond: number; latency: LatencySummary }) | null;
  rss: { before: number[]; connected: number[]; loaded: number[] } | null;
  catchUp: (CatchUp & { events: number; publishSeconds: number }) | null;
  /** CPU seconds of each kind of process during the steady state. */
  cpu: {
    nodes: number[];
    loadgens: number[];
    /** Conveyor: the PostgreSQL backends serving its nodes; Socket.IO: Redis. */
    database: number;
    /** Everything else on the machine (other people's work): at ≥ 1 CPU-s the run was noisy. */
    other: number | null;
    wallSeconds: number;
  } | null;
  /** Each process's event-loop delay during the steady state, ms. */
  loopDelay: { nodes: LoopDelay[]; loadgens: LoopDelay[] } | null;
  wallSeconds: number;
  /** How many times the system was run (--retry-noisy keeps the quietest attempt). */
  attempts?: number;
};

type Ready = { port: number; nodeId: string; dbNames?: string[] };

const CHANNEL_PREFIX = "room-";
const CATCH_UP_CHANNEL = "catch-up";

export function channelName(index: number): string {
  return `${CHANNEL_PREFIX}${String(index).padStart(3, "0")}`;
}

/** Runs one system; whatever happens, its processes are stopped and its schema dropped. */
export async function runLive(
  system: LiveSystem,
  settings: LiveSettings,
  runId: string,
  options: { tasksEventRate: number | null; profileDir: string | null },
): Promise<LiveResult> {
  const started = Date.now();
  const result: LiveResult = {
    system,
    status: "ok",
    settings: describeSettings(system, settings),
    connections: [],
    published: null,
    latency: null,
    latencyBySource: null,
    delivery: null,
    tasks: null,
    rss: null,
    catchUp: null,
    cpu: null,
    loopDelay: null,
    wallSeconds: 0,
  };
  const peers: Peer[] = [];
  const schema = `bench_live_${runId}`;
  try {
    let nodes: { peer: Peer; ready: Ready }[];
    try {
      if (system === "conveyor") await recreateSchema(schema);
      nodes = await startNodes(system, settings, schema, runId, options.profileDir);
    } catch (error) {
      return { ...result, status: "unavailable", reason: reasonOf(error), wallSeconds: seconds(started) };
    }
    peers.push(...nodes.map((n) => n.peer));
    const loadgens = await Promise.all(
      Array.from({ length: settings.loadgens }, (_, index) =>
        startChild<{ pid: number }>(`load ${index}`, new URL("./load.ts", import.meta.url), {
          args: { system, index },
        }).then((s) => s.peer),
      ),
    );
    peers.push(...loadgens);
    await steadyState(system, settings, nodes, loadgens, options.tasksEventRate, result);
    await catchUp(system, settings, nodes, loadgens[0]!, result);
    const failure = failureOf(result);
    if (failure !== null) Object.assign(result, { status: "failed", reason: failure });
  } catch (error) {
    Object.assign(result, { status: "failed", reason: reasonOf(error) });
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
    if (system === "conveyor") await dropSchema(schema);
  }
  result.wallSeconds = seconds(started);
  return result;
}

async function startNodes(
  system: LiveSystem,
  settings: LiveSettings,
  schema: string,
  runId: string,
  profileDir: string | null,
): Promise<{ peer: Peer; ready: Ready }[]> {
  const nodes: { peer: Peer; ready: Ready }[] = [];
  // One after the other: the first migrates the fresh schema, the second finds it done.
  for (const index of [0, 1]) {
    const execArgv = ["--expose-gc"];
    if (profileDir !== null)
      execArgv.push("--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${system}-node-${index}.cpuprofile`);
    const file = system === "conveyor" ? "./conveyor-node.ts" : "./socketio-node.ts";
    const args =
      system === "conveyor"
        ? { database: PG_URL, schema, index, replayLimit: settings.replayLimit }
        : { redisUrl: REDIS_URL, key: `bench-live-${runId}`, index };
    nodes.push(await startChild<Ready>(`${system} node ${index}`, new URL(file, import.meta.url), { args, execArgv }));
  }
  return nodes;
}

function urlOf(system: LiveSystem, port: number): string {
  return system === "conveyor" ? `ws://127.0.0.1:${port}/api/live` : `http://127.0.0.1:${port}`;
}

/** Client i follows channel i mod channels; the clients of a channel alternate between the two servers. */
function clientPlan(system: LiveSystem, settings: LiveSettings, ports: number[], loadgens: number): ClientSpec[][] {
  const plan: ClientSpec[][] = Array.from({ length: loadgens }, () => []);
  for (let i = 0; i < settings.clients; i++) {
    const node = Math.floor(i / settings.channels) % 2;
    plan[i % loadgens]!.push({ url: urlOf(system, ports[node]!), node, channel: channelName(i % settings.channels) });
  }
  for (let k = 0; k < settings.tasksClients; k++)
    plan[k % loadgens]!.push({ url: urlOf(system, ports[k % 2]!), node: k % 2, channel: "tasks" });
  return plan;
}

async function steadyState(
  system: LiveSystem,
  settings: LiveSettings,
  nodes: { peer: Peer; ready: Ready }[],
  loadgens: Peer[],
  tasksEventRate: number | null,
  result: LiveResult,
): Promise<void> {
  const label = system;
  const ports = nodes.map((n) => n.ready.port);
  const rssBefore = await Promise.all(nodes.map((n) => n.peer.call<number>("rss")));
  // Conveyor's clients all subscribe from one position taken now: each must then get exactly the log's events of
  // its channel after it, which the log itself can tell at the end.
  const since = system === "conveyor" ? await nodes[0]!.peer.call<Position>("position") : null;
  const plan = clientPlan(system, settings, ports, loadgens.length);
  const total = settings.clients + settings.tasksClients;
  progress(`${label}: connecting ${total} clients (${plan.map((p) => p.length).join(" + ")} per load generator)…`);
  const t0 = Date.now();
  await Promise.all(loadgens.map((lg, i) => lg.call("connect", { clients: plan[i], since })));
  result.connections = [0, 1].map((node) => plan.flat().filter((c) => c.url === urlOf(system, ports[node]!)).length);
  progress(`${label}: ${total} clients subscribed in ${seconds(t0)} s`);
  const rssConnected = await Promise.all(nodes.map((n) => n.peer.call<number>("rss")));

  const database =
    system === "conveyor"
      ? await postgresBackendsCpu(nodes.flatMap((n) => n.ready.dbNames ?? []))
      : processesCpu("redis-server");
  const cpuBefore = await cpuOf(nodes, loadgens);
  const steadyStart = Date.now();
  // Socket.IO has no drain: its servers emit as many task events per second as Conveyor's drain made.
  const taskRate = system === "conveyor" ? settings.taskRate : (tasksEventRate ?? settings.taskRate * 3);
  await Promise.all(nodes.map((n) => n.peer.call("startTasks", { rate: taskRate / 2 })));
  if (system === "conveyor")
    await Promise.all(nodes.map((n) => n.peer.call("probeStart", { channel: channelName(0) })));
  const channels = Array.from({ length: settings.channels }, (_, i) => channelName(i));
  const ticker = setInterval(() => void reportProgress(label, settings, nodes, loadgens, steadyStart), 1000);
  let outcomes: PublishOutcome[];
  try {
    outcomes = await Promise.all(
      nodes.map((n, node) =>
        n.peer.call<PublishOutcome>("publish", { node, rate: settings.rate / 2, seconds: settings.seconds, channels }),
      ),
    );
  } finally {
    clearInterval(ticker);
  }
  if (system === "conveyor") {
    const probes = await Promise.all(nodes.map((n) => n.peer.call<Histogram>("probeStop")));
    result.handedOut = summarise(probes.reduce(merge, histogram()));
  }
  const rssLoaded = await Promise.all(nodes.map((n) => n.peer.call<number>("rss")));
  const drained = await Promise.all(nodes.map((n) => n.peer.call<{ enqueued: number; emitted?: number }>("stopTasks")));
  const cpuAfter = await cpuOf(nodes, loadgens);
  const databaseSeconds = await database.stop();
  const steadySeconds = seconds(steadyStart);
  result.rss = { before: rssBefore, connected: rssConnected, loaded: rssLoaded };
  const nodesCpu = cpuAfter.nodes.map((c, i) => round2(c - cpuBefore.nodes[i]!));
  const loadgensCpu = cpuAfter.loadgens.map((c, i) => round2(c - cpuBefore.loadgens[i]!));
  const own = [...nodesCpu, ...loadgensCpu].reduce((a, b) => a + b, 0) + cpuAfter.parent - cpuBefore.parent;
  result.cpu = {
    nodes: nodesCpu,
    loadgens: loadgensCpu,
    database: databaseSeconds,
    other: otherSeconds(cpuBefore.machine, cpuAfter.machine, own + databaseSeconds),
    wallSeconds: steadySeconds,
  };
  result.loopDelay = cpuAfter.loops;
  result.published = publishedFigures(outcomes);

  // What each client should have: every event published on its channel; for `tasks`, every task event the log
  // holds after the clients' position (Conveyor), or every one emitted (Socket.IO).
  const log =
    since === null
      ? null
      : await nodes[0]!.peer.call<Record<string, Fingerprint>>("fingerprints", { after: since.offset });
  const perChannel = channels.map((_, c) => outcomes.reduce((sum, o) => sum + o.published[c]!, 0));
  const expectedOf = (channel: string) =>
    channel === "tasks"
      ? (log?.tasks?.count ?? drained.reduce((sum, d) => sum + (d.emitted ?? 0), 0))
      : perChannel[channels.indexOf(channel)]!;
  const expectedTotal = plan.flat().reduce((sum, c) => sum + expectedOf(c.channel), 0);
  await settle(label, loadgens, expectedTotal);
  const reports = await Promise.all(loadgens.map((lg) => lg.call<LoadReport>("report")));
  const clients = reports.flatMap((r) => r.clients);
  const app = clients.filter((c) => c.channel !== "tasks");
  const tasks = clients.filter((c) => c.channel === "tasks");
  const merged = (pick: (r: LoadReport) => Histogram) => reports.map(pick).reduce(merge, histogram());
  result.latency = summarise(
    merge(
      merged((r) => r.sameServer),
      merged((r) => r.otherServer),
    ),
  );
  result.latencyBySource = {
    sameServer: summarise(merged((r) => r.sameServer)),
    otherServer: summarise(merged((r) => r.otherServer)),
  };
  result.delivery = delivery(app, expectedOf, log);
  const tasksEvents = expectedOf("tasks");
  result.tasks = {
    ...delivery(tasks, expectedOf, log),
    eventsPerSecond: Math.round(tasksEvents / steadySeconds),
    latency: summarise(merged((r) => r.tasks)),
  };
  if (log !== null) {
    // The log against the publishers: every publish that resolved is one event of its channel, and no more.
    const unlike = channels.filter((channel, c) => (log[channel]?.count ?? 0) !== perChannel[c]);
    if (unlike.length > 0) throw new Error(`the log's counts differ from the publishers' on ${unlike.join(", ")}`);
  }
  await Promise.all(loadgens.map((lg) => lg.call("closeAll")));
}

/** Waits until the clients have everything expected, or until deliveries stop coming for two seconds. */
async function settle(label: string, loadgens: Peer[], expected: number): Promise<void> {
  let last = -1;
  let still = 0;
  for (;;) {
    const received = (await Promise.all(loadgens.map((lg) => lg.call<number>("totals")))).reduce((a, b) => a + b, 0);
    if (received >= expected) return;
    still = received === last ? still + 1 : 0;
    if (still >= 20) {
      progress(`${label}: deliveries stopped at ${received} of ${expected}`);
      return;
    }
    last = received;
    await sleep(100);
  }
}

function delivery(
  clients: ClientReport[],
  expectedOf: (channel: string) => number,
  log: Record<string, Fingerprint> | null,
): Delivery {
  let expected = 0;
  let delivered = 0;
  let lost = 0;
  for (const client of clients) {
    const want = expectedOf(client.channel);
    expected += want;
    delivered += client.distinct;
    lost += Math.max(0, want - client.distinct);
  }
  const sum = (pick: (c: ClientReport) => number) => clients.reduce((s, c) => s + pick(c), 0);
  return {
    clients: clients.length,
    expected,
    delivered,
    lost,
    duplicates: sum((c) => c.duplicates),
    outOfOrder: sum((c) => c.outOfOrder),
    reconnects: sum((c) => c.reconnects),
    unlikeLog: log === null ? null : clients.filter((c) => !sameFingerprint(c.fingerprint, log[c.channel])).length,
  };
}

/** A client leaves, misses `catchUp` events, and comes back to the other server with its last position. */
async function catchUp(
  system: LiveSystem,
  settings: LiveSettings,
  nodes: { peer: Peer; ready: Ready }[],
  loadgen: Peer,
  result: LiveResult,
): Promise<void> {
  const [a, b] = nodes as [{ peer: Peer; ready: Ready }, { peer: Peer; ready: Ready }];
  const seen = 10;
  await loadgen.call("awayConnect", { url: urlOf(system, a.ready.port), channel: CATCH_UP_CHANNEL });
  await a.peer.call("burst", { channel: CATCH_UP_CHANNEL, count: seen, concurrency: 1, firstSeq: 1 });
  const position = await loadgen.call<Position | null>("awayLeave", { events: seen });
  progress(
    `${system}: catch-up: the client left at its event ${seen}; publishing ${settings.catchUp} while it is away…`,
  );
  const sentBefore = await a.peer.call<number>("sent");
  const ticker = setInterval(async () => {
    const sent = (await a.peer.call<number>("sent").catch(() => sentBefore)) - sentBefore;
    progress(`${system}: catch-up: ${sent}/${settings.catchUp} published…`);
  }, 2000);
  let burst: { published: number; seconds: number };
  try {
    burst = await a.peer.call("burst", {
      channel: CATCH_UP_CHANNEL,
      count: settings.catchUp,
      concurrency: 50,
      firstSeq: seen + 1,
    });
  } finally {
    clearInterval(ticker);
  }
  progress(`${system}: catch-up: published in ${round2(burst.seconds)} s; the client comes back to the other server…`);
  // Socket.IO keeps nothing for a client that left (its Redis adapter has no connection state recovery): give it
  // a few seconds to show that nothing comes.
  const waitMs = system === "conveyor" ? 600_000 : settings.smoke ? 1000 : 5000;
  const back = await loadgen.call<CatchUp>("back", {
    url: urlOf(system, b.ready.port),
    count: settings.catchUp,
    since: position,
    waitMs,
  });
  result.catchUp = { ...back, events: settings.catchUp, publishSeconds: round2(burst.seconds) };
  const rate = back.seconds === null ? "never caught up" : `${Math.round(settings.catchUp / back.seconds)} events/s`;
  progress(`${system}: catch-up: ${back.report.distinct}/${settings.catchUp} delivered; ${rate}`);
}

/** The figures that make a system's run a failure: lost or repeated events, a client unlike the log. */
function failureOf(result: LiveResult): string | null {
  const problems: string[] = [];
  for (const [what, d] of [
    ["application channels", result.delivery],
    ["tasks channel", result.tasks],
  ] as const) {
    if (d === null) continue;
    if (d.lost > 0) problems.push(`${what}: ${d.lost} of ${d.expected} deliveries lost`);
    if (d.duplicates > 0) problems.push(`${what}: ${d.duplicates} duplicates`);
    if (d.outOfOrder > 0) problems.push(`${what}: ${d.outOfOrder} out of order`);
    if (d.unlikeLog !== null && d.unlikeLog > 0) problems.push(`${what}: ${d.unlikeLog} clients unlike the log`);
  }
  if (result.published !== null && result.published.failed > 0)
    problems.push(`${result.published.failed} publishes failed`);
  // Conveyor promises the catch-up; Socket.IO with the Redis adapter does not (its figure is what it is).
  const back = result.catchUp;
  if (result.system === "conveyor" && back !== null && (back.seconds === null || back.report.duplicates > 0))
    problems.push(`catch-up: ${back.report.distinct} of ${back.events} delivered, ${back.report.duplicates} twice`);
  return problems.length === 0 ? null : problems.join("; ");
}

function publishedFigures(outcomes: PublishOutcome[]): NonNullable<LiveResult["published"]> {
  return {
    events: outcomes.reduce((sum, o) => sum + o.published.reduce((a, b) => a + b, 0), 0),
    failed: outcomes.reduce((sum, o) => sum + o.failed, 0),
    seconds: round2(Math.max(...outcomes.map((o) => o.seconds))),
    behindMax: Math.max(...outcomes.map((o) => o.behindMax)),
    callMs: summarise(outcomes.map((o) => o.callMs).reduce(merge, histogram())),
  };
}

async function reportProgress(
  label: string,
  settings: LiveSettings,
  nodes: { peer: Peer }[],
  loadgens: Peer[],
  since: number,
): Promise<void> {
  try {
    const [sent, received] = await Promise.all([
      Promise.all(nodes.map((n) => n.peer.call<number>("sent"))),
      Promise.all(loadgens.map((lg) => lg.call<number>("totals"))),
    ]);
    const published = sent.reduce((a, b) => a + b, 0);
    const delivered = received.reduce((a, b) => a + b, 0);
    progress(
      `${label}: ${seconds(since)}/${settings.seconds} s, ${published} published, ${delivered} delivered (tasks channel included)…`,
    );
  } catch {
    // A progress line is not worth failing the run for.
  }
}

/** Every process's CPU time so far, and the machine's; each process's event-loop delay since the last call. */
async function cpuOf(nodes: { peer: Peer }[], loadgens: Peer[]) {
  const each = (peers: Peer[], command: string) => Promise.all(peers.map((p) => p.call<any>(command)));
  const servers = nodes.map((n) => n.peer);
  const [n, l, nodeLoops, loadLoops] = await Promise.all([
    each(servers, "cpu") as Promise<number[]>,
    each(loadgens, "cpu") as Promise<number[]>,
    each(servers, "loopDelay") as Promise<LoopDelay[]>,
    each(loadgens, "loopDelay") as Promise<LoopDelay[]>,
  ]);
  const { user, system } = process.cpuUsage();
  const parent = (user + system) / 1e6;
  return { nodes: n, loadgens: l, parent, machine: sampleCpu(), loops: { nodes: nodeLoops, loadgens: loadLoops } };
}

/** The machine's busy CPU seconds between two samples that were not this run's (null off Linux). */
function otherSeconds(before: ReturnType<typeof sampleCpu>, after: ReturnType<typeof sampleCpu>, own: number) {
  if (before === null || after === null) return null;
  return Math.max(0, round2(after.busy - before.busy - own));
}

function describeSettings(system: LiveSystem, s: LiveSettings): string {
  return system === "conveyor"
    ? `two nodes, each new Conveyor({ database: <PostgreSQL>, schema: <fresh>, liveReplayLimit: ${s.replayLimit} }) + buildServer, LISTEN/NOTIFY bus; clients: ws, docs/live-protocol.md`
    : "two servers, each new Server(http, { adapter: createAdapter(pub, sub), transports: ['websocket'] }) (ioredis); clients: socket.io-client, transports ['websocket']";
}

async function recreateSchema(schema: string): Promise<void> {
  await withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`));
}

async function dropSchema(schema: string): Promise<void> {
  await withAdmin((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).catch(() => {});
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export function progress(text: string): void {
  process.stderr.write(`  ${text}\n`);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
