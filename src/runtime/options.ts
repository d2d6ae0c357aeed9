/**
 * The options of a Conveyor node, their defaults, and their checks. A bad value stops the node at
 * construction with a ConfigError naming the option, rather than misbehaving later.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../core/errors.ts";
import { NAME_PATTERN } from "../core/task-input.ts";
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import type { Logger } from "pino";

export type ConveyorOptions = {
  /**
   * Where the tasks live when no `store` is given: a SQLite file path (default `./.conveyor/conveyor.db`), or a
   * `postgres://` URL, which also brings the cluster's bus (LISTEN/NOTIFY, or RabbitMQ with `amqp`).
   */
  database?: string;
  /** PostgreSQL: the schema of this install (default "conveyor"). */
  schema?: string;
  /** PostgreSQL: carry the cluster's signals over this RabbitMQ URL instead of LISTEN/NOTIFY. */
  amqp?: string;
  /** A store made by the caller, instead of `database`; the caller closes it. */
  store?: Store;
  /** Cross-node signals, with a `store` of the caller's; by default in-process only. The caller closes it. */
  bus?: Bus;
  /** A readable name for this node (default host:pid). */
  nodeName?: string;
  /** Tasks run at once per queue, unless `queues` says otherwise. Default 10. */
  concurrency?: number;
  queues?: Record<string, { concurrency?: number }>;
  /** Most tasks claimed per statement. Default 50. */
  batchSize?: number;
  /** Backstop poll for work, stops and events. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How often a node writes its heartbeat. Default 500 ms (docs/cluster.md: failover within 2 s). */
  heartbeatIntervalMs?: number;
  /** A node silent for this many heartbeats is dead and its tasks are rescued. Default 3 (1.5 s at the default interval). */
  deadAfterBeats?: number;
  /**
   * Self-fencing (docs/cluster.md): a node whose heartbeat has not reached the store for the dead time minus this
   * margin stops claiming and stops its running tasks (signal reason "fenced"), and ends them by the dead time, when
   * the leader may hand them to another node. Default half a heartbeat interval; at most the dead time minus one
   * interval.
   */
  fenceMarginMs?: number;
  /** Times a task may be found on a dead node before it fails. Default 3. */
  maxStalls?: number;
  /** On stop, how long running tasks may finish before they are handed back. Default 10 s. */
  shutdownGraceMs?: number;
  /** Least time between two progress writes of one task. Default 250 ms. */
  progressIntervalMs?: number;
  /** Finished tasks are deleted this long after they finish. Default 7 days. */
  taskRetentionMs?: number;
  /** Events are deleted this long after they happen. Default 1 day. */
  eventRetentionMs?: number;
  pruneIntervalMs?: number;
  logger?: Logger;
  /** Signs subscription tokens for application channels (default CONVEYOR_LIVE_SECRET; none: no such token). */
  liveSecret?: string;
  /** The longest gap (in log events) a live subscription replays; beyond, it answers recovered: false. Default 10,000. */
  liveReplayLimit?: number;
  /** Allow failure injection (POST /api/faults, conveyor.injectFault): for demos and drills. Default false. */
  allowFaultInjection?: boolean;
  /** Reported in the node's row; default the package version. */
  version?: string;
};

/** Where the store and bus come from: used once, by the constructor. */
type ConnectionOptions = "database" | "schema" | "amqp" | "store" | "bus" | "liveSecret";

export type ResolvedOptions = Required<
  Omit<ConveyorOptions, ConnectionOptions | "logger" | "nodeName" | "queues" | "fenceMarginMs">
> & {
  fenceMarginMs: number;
  nodeName: string | undefined;
  queues: Record<string, { concurrency?: number }>;
};

const CONNECTION_OPTIONS = new Set<string>(["database", "schema", "amqp", "store", "bus", "liveSecret"]);

/** This package's version, from its package.json (two folders up, from src/runtime or from dist/runtime). */
const PACKAGE_VERSION = String(
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version,
);

const DAY = 24 * 3600 * 1000;

export const DEFAULT_OPTIONS = {
  concurrency: 10,
  batchSize: 50,
  pollIntervalMs: 1000,
  // Failover within 2 s of a kill -9 (docs/cluster.md, "Failover time"): the dead time (1.5 s) plus a rescuer pass
  // (h / 4) plus the claim. A shorter dead time would fence a node whose event loop a handler blocks for ~1 s.
  heartbeatIntervalMs: 500,
  deadAfterBeats: 3,
  maxStalls: 3,
  shutdownGraceMs: 10_000,
  progressIntervalMs: 250,
  taskRetentionMs: 7 * DAY,
  eventRetentionMs: DAY,
  pruneIntervalMs: 60_000,
  liveReplayLimit: 10_000,
  allowFaultInjection: false,
  version: PACKAGE_VERSION,
} as const;

const POSITIVE_INTEGERS = [
  "liveReplayLimit",
  "batchSize",
  "pollIntervalMs",
  "heartbeatIntervalMs",
  "deadAfterBeats",
  "progressIntervalMs",
  "taskRetentionMs",
  "eventRetentionMs",
  "pruneIntervalMs",
] as const;

export function resolveOptions(options: ConveyorOptions): ResolvedOptions {
  const resolved: ResolvedOptions = { ...DEFAULT_OPTIONS, queues: {}, nodeName: undefined, fenceMarginMs: -1 };
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && !CONNECTION_OPTIONS.has(name)) (resolved as Record<string, unknown>)[name] = value;
  }
  if (options.store !== undefined && (options.database ?? options.schema ?? options.amqp) !== undefined) {
    throw new ConfigError("give either a store or a database (with its schema and amqp), not both");
  }
  if (options.bus !== undefined && options.store === undefined) {
    throw new ConfigError("a bus goes with a store of the caller's: give both, or a database");
  }
  for (const name of POSITIVE_INTEGERS) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1)
      throw new ConfigError(`${name} must be a positive integer, got ${String(value)}`);
  }
  // maxStalls 0: a task fails the first time its node dies under it.
  for (const name of ["concurrency", "shutdownGraceMs", "maxStalls"] as const) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 0)
      throw new ConfigError(`${name} must be an integer >= 0, got ${String(value)}`);
  }
  checkFenceMargin(resolved, options.fenceMarginMs);
  for (const [queue, settings] of Object.entries(resolved.queues)) {
    if (!NAME_PATTERN.test(queue)) throw new ConfigError(`queue name "${queue}" must match ${NAME_PATTERN.source}`);
    const concurrency = settings.concurrency;
    if (concurrency !== undefined && (!Number.isSafeInteger(concurrency) || concurrency < 0)) {
      throw new ConfigError(`queues.${queue}.concurrency must be an integer >= 0, got ${String(concurrency)}`);
    }
  }
  return resolved;
}

/**
 * The fence margin: by default half a heartbeat interval. A node fences once its heartbeat is older than the dead
 * time minus the margin, so that must leave it more than one interval: a margin that fenced between two on-time
 * beats would stop every task all the time.
 */
function checkFenceMargin(resolved: ResolvedOptions, given: number | undefined): void {
  const { heartbeatIntervalMs: interval, deadAfterBeats } = resolved;
  // One beat: a node would look dead between two on-time beats (the CLI asks for 2 at least, too).
  if (deadAfterBeats < 2) throw new ConfigError(`deadAfterBeats must be at least 2, got ${deadAfterBeats}`);
  const deadAfterMs = interval * deadAfterBeats;
  if (given === undefined) {
    resolved.fenceMarginMs = Math.min(Math.floor(interval / 2), deadAfterMs - interval - 1);
    return;
  }
  if (!Number.isSafeInteger(given) || given < 0 || deadAfterMs - given <= interval) {
    throw new ConfigError(
      `fenceMarginMs must be an integer from 0 to ${deadAfterMs - interval - 1} (the dead time, ${deadAfterMs} ms, minus more than one heartbeat interval), got ${String(given)}`,
    );
  }
}
