/**
 * `conveyor start`: run a node, with the HTTP API, until SIGTERM or SIGINT, then shut down gracefully.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pino from "pino";
import { ENVIRONMENT, parseEnvConfig, parseValue, type NodeConfig } from "../core/config.ts";
import { Conveyor } from "../runtime/conveyor.ts";
import { Dispatch } from "../dispatch/dispatch.ts";
import { buildServer } from "../http/server.ts";
import { parseCorsOrigins } from "../http/cors.ts";
import { HELP_FLAG, parse, UsageError } from "./args.ts";
import { TOKEN_FILES, tokenFilesFromEnv, tokenFilesFromFlags } from "./token-files.ts";

const LISTEN_BACKLOG = 4096;

export const START_HELP = `Usage: conveyor start [options]

Run a Conveyor node: its workers, services and HTTP API (/api, /metrics).

Options (each also read from the environment variable in brackets):
  --database <path|url>   SQLite file (default ./.conveyor/conveyor.db), or postgres://... to join a
                          cluster [CONVEYOR_DATABASE]
  --schema <name>         PostgreSQL schema (default conveyor) [CONVEYOR_SCHEMA]
  --amqp <url>            carry the cluster's signals over RabbitMQ, not LISTEN/NOTIFY [CONVEYOR_AMQP_URL]
  --port <n>              HTTP port (default 4000) [PORT]
  --host <addr>           HTTP address to bind (default 0.0.0.0) [HOST]
  --handlers <module>     a module whose default export registers task types: (conveyor) => void;
                          repeat the flag for several modules
  --concurrency <n>       tasks run at once per queue (default 10) [CONVEYOR_CONCURRENCY]
  --token <secret>        require "Authorization: Bearer <secret>" on writes [CONVEYOR_TOKEN]
  --read-token <secret>   a read-only token; when set, reads need it (or --token) [CONVEYOR_READ_TOKEN]
  --admin-token <secret>  when set, fault injection, deleting and changing concurrency need it, not
                          --token (which may do them otherwise) [CONVEYOR_ADMIN_TOKEN]
  --token-file, --read-token-file, --admin-token-file <path>
                          read that token from a file, trimmed, once at start [CONVEYOR_TOKEN_FILE,
                          CONVEYOR_READ_TOKEN_FILE, CONVEYOR_ADMIN_TOKEN_FILE]
  --cors-origins <list>   origins whose pages may call the API, comma-separated, or * (default none)
                          [CONVEYOR_CORS_ORIGINS]
  --rate-limit <n>        requests a minute per client address without a valid token, where a token is
                          set (default 600; 0: no limit) [CONVEYOR_RATE_LIMIT]
  --live-secret <secret>  signs subscription tokens for application channels [CONVEYOR_LIVE_SECRET]
  --allow-fault-injection allow POST /api/faults (demos and drills) [CONVEYOR_ALLOW_FAULT_INJECTION=true]
  --name <name>           this node's name (default host:pid) [CONVEYOR_NODE_NAME]
  --heartbeat-ms <n>      heartbeat interval (default 500) [CONVEYOR_HEARTBEAT_INTERVAL_MS]
  --dead-after <n>        heartbeats missed before a node is dead (default 3: 1.5 s) [CONVEYOR_DEAD_AFTER_BEATS]
  --fence-margin-ms <n>   a node cut off from the store stops its tasks this long before the dead time
                          (default half a heartbeat; docs/cluster.md) [CONVEYOR_FENCE_MARGIN_MS]
  --grace-ms <n>          on SIGTERM, how long running tasks may finish (default 10000) [CONVEYOR_SHUTDOWN_GRACE_MS]
  -h, --help              show this help

Dispatch (docs/dispatch.md) reads CONVEYOR_DISPATCH_ALLOW_NETS (networks its SSRF guard lets through, e.g.
10.0.0.0/8,127.0.0.1), CONVEYOR_DISPATCH_AMQP_URL (the broker of AMQP publishers; default --amqp),
CONVEYOR_DISPATCH_AUTO_DISABLE_AFTER_MS (disable a publisher failing that long; default never) and
MAX_BULK_MESSAGES (default 3000).
`;

/** Flag → setting; each flag is checked like its environment variable. */
const FLAGS: Record<string, keyof NodeConfig> = {
  database: "database",
  schema: "schema",
  amqp: "amqp",
  port: "port",
  host: "host",
  concurrency: "concurrency",
  token: "token",
  "read-token": "readToken",
  "admin-token": "adminToken",
  "cors-origins": "corsOrigins",
  "rate-limit": "rateLimit",
  "live-secret": "liveSecret",
  name: "nodeName",
  "heartbeat-ms": "heartbeatIntervalMs",
  "dead-after": "deadAfterBeats",
  "fence-margin-ms": "fenceMarginMs",
  "grace-ms": "shutdownGraceMs",
};

export type HandlerModule = { default?: unknown; register?: unknown };

export async function loadHandlerModules(conveyor: Conveyor, specifiers: string[]): Promise<void> {
  for (const specifier of specifiers) {
    const url = /^[a-z]+:/.test(specifier) ? specifier : pathToFileURL(resolve(specifier)).href;
    const module = (await import(url)) as HandlerModule;
    const register = module.default ?? module.register;
    if (typeof register !== "function") {
      throw new UsageError(`${specifier} must export a function (default or "register") taking the conveyor`);
    }
    await register(conveyor);
  }
}

/** The environment's settings (tokens from files included), overridden by the flags given. */
export function startConfig(values: Record<string, unknown>, env: Record<string, string | undefined>): NodeConfig {
  const config: Record<string, unknown> = { ...parseEnvConfig(env), ...tokenFilesFromEnv(env) };
  for (const [flag, key] of Object.entries(FLAGS)) {
    const raw = values[flag];
    if (typeof raw !== "string") continue;
    const spec = Object.values(ENVIRONMENT).find((entry) => entry.key === key)!;
    config[key] = parseValue(`--${flag}`, raw, spec.kind);
  }
  Object.assign(config, tokenFilesFromFlags(values));
  return config as NodeConfig;
}

export async function start(args: string[]): Promise<void> {
  const { values } = parse(args, {
    help: HELP_FLAG,
    handlers: { type: "string", multiple: true },
    "allow-fault-injection": { type: "boolean" },
    ...Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: "string" }])),
    ...Object.fromEntries(TOKEN_FILES.map(({ flag }) => [`${flag}-file`, { type: "string" }])),
  } as const);
  if (values.help) return void process.stdout.write(START_HELP);
  const config = startConfig(values, process.env);
  const logger = pino({ level: config.logLevel ?? "info" });
  const conveyor = new Conveyor({
    database: config.database,
    schema: config.schema,
    amqp: config.amqp,
    logger,
    concurrency: config.concurrency,
    nodeName: config.nodeName,
    pollIntervalMs: config.pollIntervalMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    deadAfterBeats: config.deadAfterBeats,
    fenceMarginMs: config.fenceMarginMs,
    maxStalls: config.maxStalls,
    shutdownGraceMs: config.shutdownGraceMs,
    liveSecret: config.liveSecret,
    allowFaultInjection: values["allow-fault-injection"] === true || config.allowFaultInjection === true,
  });
  await loadHandlerModules(conveyor, (values.handlers as string[] | undefined) ?? []);
  // Dispatch (Postoffice's API and deliveries, docs/dispatch.md); AMQP publishers use the node's broker by default.
  const dispatch = new Dispatch(
    conveyor,
    process.env.CONVEYOR_DISPATCH_AMQP_URL === undefined && config.amqp !== undefined ? { amqpUrl: config.amqp } : {},
  );
  // The server is built (its schemas compiled: hundreds of ms of CPU) before the node starts heartbeating, so
  // that a starting node never goes silent long enough to look dead and have its first tasks rescued.
  const app = await buildServer({
    conveyor,
    token: config.token ?? null,
    readToken: config.readToken ?? null,
    adminToken: config.adminToken ?? null,
    corsOrigins: parseCorsOrigins(config.corsOrigins),
    ...(config.rateLimit === undefined ? {} : { rateLimit: config.rateLimit }),
    logger: false,
  });
  await app.ready();
  await conveyor.start();
  await dispatch.start();
  // Connections waiting to be accepted: Node's default of 511 overflowed when the load bench's 1,200 clients
  // connected to one node at once (the kernel drops what does not fit; it caps this at net.core.somaxconn).
  const address = await app.listen({
    port: config.port ?? 4000,
    host: config.host ?? "0.0.0.0",
    backlog: LISTEN_BACKLOG,
  });
  logger.info(`conveyor node ${conveyor.nodeName} (${conveyor.nodeId}) on ${conveyor.where}, listening on ${address}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: stopping (running tasks get up to ${conveyor.options.shutdownGraceMs} ms)`);
    await app.close();
    await conveyor.stop();
    await dispatch.stop();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
