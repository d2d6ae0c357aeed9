/**
 * The example's knobs, read from the environment. A bad value stops the start with a message naming the variable
 * (exit code 2), never a silent fallback. The seed hard-coded its timings (1 s, 1 s, 5 s, a 5 s TTL); here they are
 * the defaults of DOWNLOAD_*_MS.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

export type DownloadsConfig = {
  /** HTTP port; 0 picks a free one. */
  port: number;
  /** Address to listen on; undefined: every interface. */
  host: string | undefined;
  /** Where the SQLite file lives when CONVEYOR_DATABASE is not set. */
  dataDir: string;
  /** A SQLite path or a postgres:// URL: nodes sharing one PostgreSQL database (and schema) form the cluster. */
  database: string;
  /** PostgreSQL schema of this example's tables (default "downloads", so it never mixes with `npm start`'s). */
  schema: string;
  /** Carry the cluster's signals over RabbitMQ instead of LISTEN/NOTIFY. */
  amqp: string | undefined;
  /** Signs the session cookie (and, derived from it, the live stream's subscription tokens): shared by all nodes. */
  sessionSecret: string;
  /** Whether sessionSecret is the development default (a warning is printed). */
  sessionSecretIsDefault: boolean;
  /** x.y.z, reported in this node's row; the version observer compares majors. */
  appVersion: string;
  nodeName: string;
  /** The seed's timeline: pending at T + start, processing start + process later, ready ready ms after that. */
  startMs: number;
  processMs: number;
  readyMs: number;
  /** How long a ready (or failed) download stays before it disappears. */
  ttlMs: number;
  /** Probability that one tenth of the file's generation fails (a demo of retries and of the `error` state). */
  failRate: number;
  /** Attempts a download gets before it ends in `error`. */
  attempts: number;
  /** The singleton DatabaseCleaner's period (the seed's 2 s). */
  cleanerIntervalMs: number;
  /** Conveyor's own knobs, same names as `conveyor start`. */
  heartbeatIntervalMs: number | undefined;
  deadAfterBeats: number | undefined;
  pollIntervalMs: number | undefined;
  shutdownGraceMs: number;
  logLevel: string;
};

/** The development secret: fine on a laptop, never in production (a warning says so). */
export const DEV_SESSION_SECRET = "downloads-dev-secret-change-me-in-production";

export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** The package's version (the default APP_VERSION). */
export function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return String((JSON.parse(text) as { version: unknown }).version);
}

const VERSION = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

/** A version's major, or null when it is not exactly three integers (the seed's Version.from_string). */
export function majorOf(version: string): number | null {
  const match = VERSION.exec(version);
  return match === null ? null : Number(match[1]);
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The configuration from `env` (normally `process.env`); throws a ConfigurationError naming the bad variable. */
export function configFromEnv(env: Record<string, string | undefined>): DownloadsConfig {
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new ConfigurationError(
        `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(env[name])}`,
      );
    }
    return parsed;
  };
  const optionalInteger = (name: string, min: number, max: number): number | undefined =>
    text(name) === undefined ? undefined : integer(name, 0, min, max);
  const milliseconds = (name: string, fallback: number) => integer(name, fallback, 0, 86_400_000);

  const port = integer("PORT", 4000, 0, 65_535);
  const dataDir = text("DATA_DIR") ?? "./tmp";
  const secret = text("SESSION_SECRET");
  if (secret !== undefined && secret.length < 16) {
    throw new ConfigurationError("SESSION_SECRET must be at least 16 characters");
  }
  const appVersion = text("APP_VERSION") ?? packageVersion();
  if (majorOf(appVersion) === null) {
    throw new ConfigurationError(`APP_VERSION must be x.y.z (three integers), got ${JSON.stringify(appVersion)}`);
  }
  const failText = text("DOWNLOAD_FAIL_RATE");
  const failRate = failText === undefined ? 0 : /^(0|1|0?\.\d+|1\.0*)$/.test(failText) ? Number(failText) : Number.NaN;
  if (!(failRate >= 0 && failRate <= 1)) {
    throw new ConfigurationError(`DOWNLOAD_FAIL_RATE must be a number from 0 to 1, got ${JSON.stringify(failText)}`);
  }
  const logLevel = text("CONVEYOR_LOG_LEVEL") ?? "warn";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigurationError(`CONVEYOR_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const nodeName = text("NODE_NAME") ?? text("CONVEYOR_NODE_NAME") ?? `${hostname()}:${port || process.pid}`;
  if (nodeName.length > 100) throw new ConfigurationError("NODE_NAME must be at most 100 characters");
  return {
    port,
    host: text("HOST"),
    dataDir,
    database: text("CONVEYOR_DATABASE") ?? join(dataDir, "downloads.db"),
    schema: text("CONVEYOR_SCHEMA") ?? "downloads",
    amqp: text("CONVEYOR_AMQP_URL"),
    sessionSecret: secret ?? DEV_SESSION_SECRET,
    sessionSecretIsDefault: secret === undefined,
    appVersion,
    nodeName,
    startMs: milliseconds("DOWNLOAD_START_MS", 1000),
    processMs: milliseconds("DOWNLOAD_PROCESS_MS", 1000),
    readyMs: milliseconds("DOWNLOAD_READY_MS", 5000),
    ttlMs: milliseconds("DOWNLOAD_TTL_MS", 5000),
    failRate,
    attempts: integer("DOWNLOAD_ATTEMPTS", 3, 1, 100),
    cleanerIntervalMs: integer("CLEANER_INTERVAL_MS", 2000, 10, 86_400_000),
    heartbeatIntervalMs: optionalInteger("CONVEYOR_HEARTBEAT_INTERVAL_MS", 10, 3_600_000),
    deadAfterBeats: optionalInteger("CONVEYOR_DEAD_AFTER_BEATS", 2, 1000),
    pollIntervalMs: optionalInteger("CONVEYOR_POLL_INTERVAL_MS", 10, 3_600_000),
    // A download resumes from its last step on whichever node takes it, so a stopping node hands its jobs over at
    // once rather than holding the shutdown for them.
    shutdownGraceMs: integer("CONVEYOR_SHUTDOWN_GRACE_MS", 0, 0, 3_600_000),
    logLevel,
  };
}
