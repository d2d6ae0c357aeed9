/**
 * The multi-process cluster harness: real `conveyor start` processes (src/cli/main.ts) on one PostgreSQL schema
 * (and optionally one RabbitMQ exchange), with the task types of test/fixtures/cluster-handlers.ts.
 *
 * Every wait is on a child's output line or an HTTP answer, bounded, and fails with what the child said. Every
 * child still alive when a test ends (passed or not) is killed; the schema, the exchange and the scratch folder are
 * removed. Nothing here sleeps for correctness: the few pauses are the pace of a poll on an HTTP answer.
 *
 * Each node's whole output (stdout, then stderr) of the latest run of each test is kept for a post-mortem in
 * $TMPDIR/conveyor-cluster-logs/<prefix>/<node>-<n>.log (the folder is emptied when that test starts again).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";
import amqp from "amqplib";
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import type { Task, LogEvent } from "../../src/index.ts";
import { amqpAvailable, amqpUrl, postgresAvailable, postgresUrl, requireService } from "../support/services.ts";
import { dropSchema, freshSchema } from "../support/postgres.ts";
import { WatchedProcess, withTimeout, type Line } from "../support/watched-process.ts";
import { freePort } from "../support/free-port.ts";

export { freePort, withTimeout, type Line };

const REPO = new URL("../../", import.meta.url).pathname;
const MAIN = join(REPO, "src/cli/main.ts");
export const HANDLERS = join(REPO, "test/fixtures/cluster-handlers.ts");

/** The cluster's timing: a node silent for 3 × 200 ms is dead; the leader lease lasts as long. */
export const HEARTBEAT_MS = 200;
export const DEAD_AFTER_BEATS = 3;
export const LEASE_MS = HEARTBEAT_MS * DEAD_AFTER_BEATS;
export const GRACE_MS = 1000;

const execFileAsync = promisify(execFile);

// ---- small things --------------------------------------------------------------------------------------

/** The pace of a poll on an HTTP answer or a store read (never a wait for correctness). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns something other than undefined, at most `timeoutMs`; the last failure (a thrown
 * error or the description `probe` returned as a string via `miss`) is in the timeout's message.
 */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${last}` : ""}`);
    await pause(everyMs);
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** "min 1 / p50 2 / p90 3 / max 4 ms (n=5)" */
export function distribution(values: number[]): string {
  if (values.length === 0) return "none";
  const f = (p: number) => Math.round(percentile(values, p));
  return `min ${Math.round(Math.min(...values))} / p50 ${f(50)} / p90 ${f(90)} / max ${Math.round(Math.max(...values))} ms (n=${values.length})`;
}

export function countBy<T, K>(items: Iterable<T>, key: (item: T) => K): Map<K, number> {
  const counts = new Map<K, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

// ---- one node process ----------------------------------------------------------------------------------

export type NodeSpec = {
  name: string;
  concurrency: number;
  /** Carry the bus over RabbitMQ. */
  amqp?: boolean;
  /** Reach PostgreSQL (store and LISTEN/NOTIFY bus) at this URL instead: through a TcpProxy, say. */
  databaseUrl?: string;
  /** Reach RabbitMQ at this URL instead (with amqp). */
  amqpUrl?: string;
  env?: Record<string, string>;
  /** Run at the product's default timing (heartbeat, dead time, grace): no timing flags, not the harness's. */
  defaultTiming?: boolean;
};

export class NodeProcess extends WatchedProcess {
  readonly port: number;
  readonly url: string;
  /** The node's id, from its "listening" line. */
  nodeId = "";
  readonly spawnedAt = Date.now();
  /** When its "listening" line came. */
  readyAt = 0;

  constructor(args: string[], env: Record<string, string>, name: string, port: number) {
    super(name, [MAIN, "start", ...args], { cwd: REPO, env }, (line) => {
      const msg = line.json?.msg;
      const listening =
        typeof msg === "string" ? /^conveyor node .* \((node-[0-9a-f]+)\) on .* listening on /.exec(msg) : null;
      if (listening !== null) {
        this.nodeId = listening[1]!;
        this.readyAt = line.at;
      }
    });
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Pino log lines (parsed), optionally only those whose msg matches. */
  logs(match?: RegExp): (Line & { json: Record<string, unknown> })[] {
    return this.lines.filter(
      (l): l is Line & { json: Record<string, unknown> } =>
        l.json !== null && (match === undefined || (typeof l.json.msg === "string" && match.test(l.json.msg))),
    );
  }

  /** The node events it logged (their name is the log line's `event` field), from line index `from` on. */
  events(name: string, from = 0): (Line & { json: Record<string, unknown> })[] {
    return this.logs().filter((l) => l.json.event === name && this.lines.indexOf(l) >= from);
  }

  /** The first node event `name` logged from line index `from` on that satisfies `match`. */
  waitEvent(
    name: string,
    timeoutMs: number,
    from = 0,
    match: (fields: Record<string, unknown>) => boolean = () => true,
  ): Promise<Line & { json: Record<string, unknown> }> {
    return this.until(`a ${name} event`, () => this.events(name, from).find((l) => match(l.json)), timeoutMs);
  }

  /** Plain (non-JSON) lines whose first word is `word`, split in words. */
  words(word: string, from = 0): { words: string[]; at: number; index: number }[] {
    const out: { words: string[]; at: number; index: number }[] = [];
    for (let i = from; i < this.lines.length; i++) {
      const line = this.lines[i]!;
      if (line.json === null && line.text.startsWith(`${word} `))
        out.push({ words: line.text.split(" "), at: line.at, index: i });
    }
    return out;
  }

  /** The first plain line from index `from` on whose words satisfy `match`. */
  waitWords(what: string, word: string, match: (words: string[]) => boolean, timeoutMs: number, from = 0) {
    return this.until(what, () => this.words(word, from).find((l) => match(l.words)), timeoutMs);
  }

  /** The first log line (from index `from` on) whose msg matches. */
  waitLog(re: RegExp, timeoutMs: number, from = 0) {
    return this.until(
      `a log line matching ${re}`,
      () => this.logs(re).find((l) => this.lines.indexOf(l) >= from),
      timeoutMs,
    );
  }

  ready(timeoutMs = 30_000): Promise<void> {
    return this.until("the HTTP server to listen", () => this.nodeId !== "", timeoutMs).then(() => {});
  }

  async api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 10_000,
  ): Promise<{ status: number; body: T }> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.url + path, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw new Error(
        `${method} ${path} on ${this.name} failed (${this.alive ? "alive" : `exited ${JSON.stringify(this.exit)}`}): ${String(error)}${this.tail()}`,
        { cause: error },
      );
    }
    return { status: response.status, body: (text === "" ? null : JSON.parse(text)) as T };
  }
}

// ---- a cluster -----------------------------------------------------------------------------------------

export type ClusterOptions = { amqp?: boolean };

export class Cluster {
  readonly schema: string;
  readonly dir: string;
  /** cluster.work appends `<id> <attempt> <node> <nodeId>` here. */
  readonly sideEffects: string;
  /** cluster.span appends its START and END lines here. */
  readonly spans: string;
  readonly nodes: NodeProcess[] = [];
  readonly #amqp: boolean;
  readonly #logs: string;
  #store: PostgresStore | null = null;

  private constructor(t: TestContext, prefix: string, options: ClusterOptions) {
    this.schema = freshSchema(`cl_${prefix}`);
    this.#logs = join(tmpdir(), "conveyor-cluster-logs", prefix);
    rmSync(this.#logs, { recursive: true, force: true });
    this.dir = mkdtempSync(join(tmpdir(), `conveyor-cluster-${prefix}-`));
    this.sideEffects = join(this.dir, "side-effects.log");
    this.spans = join(this.dir, "spans.log");
    this.#amqp = options.amqp ?? false;
    t.after(() => this.close());
  }

  /**
   * A cluster for the test `t`, or null when PostgreSQL (or RabbitMQ, with amqp) is missing: then the test is
   * skipped loudly, or fails under CI=true.
   */
  static async open(t: TestContext, prefix: string, options: ClusterOptions = {}): Promise<Cluster | null> {
    if (!requireService(t, "PostgreSQL", await postgresAvailable())) return null;
    if (options.amqp && !requireService(t, "RabbitMQ", await amqpAvailable())) return null;
    return new Cluster(t, prefix, options);
  }

  get exchange(): string {
    return `conveyor.${this.schema}`;
  }

  /** Spawns a node (not waiting for it). */
  async spawn(spec: NodeSpec): Promise<NodeProcess> {
    const port = await freePort();
    const args = [
      "--database",
      spec.databaseUrl ?? postgresUrl(),
      "--schema",
      this.schema,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--handlers",
      HANDLERS,
      ...(spec.defaultTiming
        ? []
        : [
            "--heartbeat-ms",
            String(HEARTBEAT_MS),
            "--dead-after",
            String(DEAD_AFTER_BEATS),
            "--grace-ms",
            String(GRACE_MS),
          ]),
      "--concurrency",
      String(spec.concurrency),
      "--name",
      spec.name,
    ];
    if (spec.amqp ?? this.#amqp) args.push("--amqp", spec.amqpUrl ?? amqpUrl());
    const env: Record<string, string> = {};
    // The node reads CONVEYOR_* settings: only ours count.
    for (const [key, value] of Object.entries(process.env))
      if (value !== undefined && !key.startsWith("CONVEYOR_")) env[key] = value;
    Object.assign(env, {
      CONVEYOR_LOG_LEVEL: "info",
      CLUSTER_NODE_NAME: spec.name,
      CLUSTER_SIDE_EFFECTS: this.sideEffects,
      CLUSTER_SPANS: this.spans,
      ...spec.env,
    });
    const node = new NodeProcess(args, env, spec.name, port);
    this.nodes.push(node);
    return node;
  }

  /** Spawns a node and waits until it serves HTTP. */
  async start(spec: NodeSpec): Promise<NodeProcess> {
    const node = await this.spawn(spec);
    await node.ready();
    return node;
  }

  /** Spawns several nodes at once and waits until all serve HTTP. */
  async startAll(specs: NodeSpec[]): Promise<NodeProcess[]> {
    const nodes = await Promise.all(specs.map((spec) => this.spawn(spec)));
    await Promise.all(nodes.map((node) => node.ready()));
    return nodes;
  }

  alive(): NodeProcess[] {
    return this.nodes.filter((node) => node.alive);
  }

  byId(id: string): NodeProcess | undefined {
    return this.nodes.find((node) => node.nodeId === id);
  }

  /** The store of this cluster, read from the test process (migrated by the nodes). */
  store(): PostgresStore {
    this.#store ??= new PostgresStore({ connectionString: postgresUrl(), schema: this.schema, poolSize: 3 });
    return this.#store;
  }

  /** Closes the test's own store connections (before a server restart, say); store() opens new ones. */
  async closeStore(): Promise<void> {
    const store = this.#store;
    this.#store = null;
    await store?.close().catch(() => {});
  }

  /** Waits until every live node's /api/nodes agrees on one live leader and lists the live nodes alive. */
  async settled(timeoutMs = 10_000): Promise<{ leader: NodeProcess; views: ClusterView[] }> {
    return eventually("every node to agree on one leader and see every live node alive", timeoutMs, async () => {
      const alive = this.alive();
      const views = await Promise.all(
        alive.map(async (node) => (await node.api<ClusterView>("GET", "/api/nodes")).body),
      );
      const leaders = new Set(views.map((view) => view.leader));
      if (leaders.size !== 1 || views[0]!.leader === null) return undefined;
      const leader = this.byId(views[0]!.leader);
      if (leader === undefined || !leader.alive) return undefined;
      for (const view of views) {
        for (const node of alive) {
          const row = view.nodes.find((n) => n.id === node.nodeId);
          if (row === undefined || !row.alive) return undefined;
        }
        if (view.nodes.filter((n) => n.leader).length !== 1) return undefined;
      }
      return { leader, views };
    });
  }

  async close(): Promise<void> {
    for (const node of this.nodes) {
      if (node.alive) {
        node.process.kill("SIGKILL");
        await withTimeout(node.exited, 5000, `${node.name} to die`).catch(() => {});
      }
    }
    try {
      mkdirSync(this.#logs, { recursive: true });
      this.nodes.forEach((node, i) =>
        writeFileSync(
          join(this.#logs, `${node.name}-${i}.log`),
          `${node.lines.map((l) => `${l.at} ${l.text}`).join("\n")}\n--- exit ${JSON.stringify(node.exit)}; stderr:\n${node.stderr}`,
        ),
      );
    } catch {
      // the post-mortem copy is a convenience
    }
    await this.closeStore();
    await dropSchema(this.schema).catch((error: unknown) =>
      console.warn(`could not drop schema ${this.schema}: ${String(error)}`),
    );
    if (this.#amqp) await deleteExchange(this.exchange).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type ClusterView = {
  leader: string | null;
  nodes: {
    id: string;
    name: string;
    alive: boolean;
    heartbeatAgeMs: number;
    leader: boolean;
    version: string;
    info: { tree?: unknown };
  }[];
};

async function deleteExchange(exchange: string): Promise<void> {
  const connection = await amqp.connect(amqpUrl(), { timeout: 3000 });
  connection.on("error", () => {});
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    await channel.deleteExchange(exchange);
  } finally {
    await connection.close().catch(() => {});
  }
}

// ---- reading the store ---------------------------------------------------------------------------------

export async function allTasks(
  store: PostgresStore,
  filter: { states?: Task["state"][]; type?: string } = {},
): Promise<Task[]> {
  const tasks: Task[] = [];
  for (;;) {
    const page = await store.taskList({
      ...filter,
      limit: 1000,
      order: "asc",
      ...(tasks.length ? { after: tasks.at(-1)!.id } : {}),
    });
    tasks.push(...page);
    if (page.length < 1000) return tasks;
  }
}

export async function allEvents(store: PostgresStore): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  for (;;) {
    const page = await store.eventList({ after: events.at(-1)?.offset ?? 0, limit: 5000 });
    events.push(...page);
    if (page.length < 5000) return events;
  }
}

/** Counts per state of one queue. */
export async function queueCounts(store: PostgresStore, queue: string): Promise<Record<Task["state"], number>> {
  const stats = await store.queueStats();
  const found = stats.find((s) => s.queue === queue);
  return found?.counts ?? { scheduled: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

export type SideEffect = { id: number; attempt: number; node: string; nodeId: string };

export function sideEffects(path: string): SideEffect[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, attempt, node, nodeId] = line.split(" ");
      return { id: Number(id), attempt: Number(attempt), node: node!, nodeId: nodeId! };
    });
}

export type Span = { id: number; attempt: number; node: string; start: number; end: number | null; how: string | null };

/** cluster.span's attempts, from its START and END lines; `end` null for one that has not ended. */
export function spans(path: string): Span[] {
  if (!existsSync(path)) return [];
  const byAttempt = new Map<string, Span>();
  for (const line of readFileSync(path, "utf8").split("\n").filter(Boolean)) {
    const [word, id, attempt, node, at, how] = line.split(" ");
    const key = `${id} ${attempt} ${node}`;
    if (word === "START") {
      byAttempt.set(key, {
        id: Number(id),
        attempt: Number(attempt),
        node: node!,
        start: Number(at),
        end: null,
        how: null,
      });
    } else {
      const span = byAttempt.get(key);
      if (span !== undefined) Object.assign(span, { end: Number(at), how: how ?? null });
    }
  }
  return [...byAttempt.values()];
}

// ---- the servers ---------------------------------------------------------------------------------------

export async function run(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout, stderr } = await execFileAsync(command, args, { timeout: timeoutMs });
  return stdout + stderr;
}

/** The PostgreSQL cluster version to restart (the one folder in /etc/postgresql, else 15). */
export function postgresVersion(): string {
  const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql").filter((v) => /^\d+$/.test(v)) : [];
  return versions.sort((a, b) => Number(b) - Number(a))[0] ?? "15";
}

/**
 * Sessions on the PostgreSQL server that are not this cluster's (not its store, its liveness connections or a bus):
 * other test files running at the same time. A server restart would break them, so the restart waits (bounded) until
 * there are none.
 */
export async function foreignSessions(schema: string): Promise<number> {
  const client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND application_name NOT IN ($1, $2) AND application_name NOT LIKE 'conveyor-bus-%'`,
      // The nodes' pools, and their liveness connections (health checks and heartbeats).
      [`conveyor-store-${schema}`.slice(0, 63), `conveyor-health-${schema}`.slice(0, 63)],
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end().catch(() => {});
  }
}

/** AMQP connections on the broker: a broker restart would break other test files using it at the same time. */
export async function amqpConnections(): Promise<number> {
  const out = await run("rabbitmqctl", ["list_connections", "-q", "name"], 30_000);
  return out.split("\n").filter((line) => line.includes("->")).length; // "<client> -> <server>"; not the header
}
