/**
 * A node's configuration from the environment (the twelve-factor way), checked: a bad value stops the node
 * with a ConfigError naming the variable, instead of being ignored or misread. Command-line flags, where
 * given, override these (src/cli/start.ts).
 */
import { ConfigError } from "./errors.ts";

export type NodeConfig = {
  port?: number;
  host?: string;
  database?: string;
  schema?: string;
  amqp?: string;
  token?: string;
  readToken?: string;
  adminToken?: string;
  corsOrigins?: string;
  rateLimit?: number;
  liveSecret?: string;
  allowFaultInjection?: boolean;
  nodeName?: string;
  concurrency?: number;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
  deadAfterBeats?: number;
  fenceMarginMs?: number;
  maxStalls?: number;
  shutdownGraceMs?: number;
  logLevel?: string;
};

type Kind =
  | { type: "string" }
  | { type: "boolean" }
  | { type: "integer"; min: number; max: number }
  | { type: "enum"; values: readonly string[] };

/** Every variable a node reads, with the setting it fills. */
export const ENVIRONMENT: Record<string, { key: keyof NodeConfig; kind: Kind }> = {
  PORT: { key: "port", kind: { type: "integer", min: 0, max: 65535 } },
  HOST: { key: "host", kind: { type: "string" } },
  CONVEYOR_DATABASE: { key: "database", kind: { type: "string" } },
  CONVEYOR_SCHEMA: { key: "schema", kind: { type: "string" } },
  CONVEYOR_AMQP_URL: { key: "amqp", kind: { type: "string" } },
  CONVEYOR_TOKEN: { key: "token", kind: { type: "string" } },
  CONVEYOR_READ_TOKEN: { key: "readToken", kind: { type: "string" } },
  CONVEYOR_ADMIN_TOKEN: { key: "adminToken", kind: { type: "string" } },
  CONVEYOR_CORS_ORIGINS: { key: "corsOrigins", kind: { type: "string" } },
  CONVEYOR_RATE_LIMIT: { key: "rateLimit", kind: { type: "integer", min: 0, max: 1_000_000 } },
  CONVEYOR_LIVE_SECRET: { key: "liveSecret", kind: { type: "string" } },
  CONVEYOR_ALLOW_FAULT_INJECTION: { key: "allowFaultInjection", kind: { type: "boolean" } },
  CONVEYOR_NODE_NAME: { key: "nodeName", kind: { type: "string" } },
  CONVEYOR_CONCURRENCY: { key: "concurrency", kind: { type: "integer", min: 0, max: 10_000 } },
  CONVEYOR_POLL_INTERVAL_MS: { key: "pollIntervalMs", kind: { type: "integer", min: 10, max: 3_600_000 } },
  CONVEYOR_HEARTBEAT_INTERVAL_MS: { key: "heartbeatIntervalMs", kind: { type: "integer", min: 10, max: 3_600_000 } },
  CONVEYOR_DEAD_AFTER_BEATS: { key: "deadAfterBeats", kind: { type: "integer", min: 2, max: 1000 } },
  CONVEYOR_FENCE_MARGIN_MS: { key: "fenceMarginMs", kind: { type: "integer", min: 0, max: 3_600_000 } },
  CONVEYOR_MAX_STALLS: { key: "maxStalls", kind: { type: "integer", min: 0, max: 1000 } },
  CONVEYOR_SHUTDOWN_GRACE_MS: { key: "shutdownGraceMs", kind: { type: "integer", min: 0, max: 3_600_000 } },
  CONVEYOR_LOG_LEVEL: {
    key: "logLevel",
    kind: { type: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
  },
};

export function parseEnvConfig(env: Record<string, string | undefined>): NodeConfig {
  const config: Record<string, string | number | boolean> = {};
  for (const [variable, { key, kind }] of Object.entries(ENVIRONMENT)) {
    const raw = env[variable];
    if (raw === undefined || raw === "") continue;
    config[key] = parseValue(variable, raw, kind);
  }
  return config as NodeConfig;
}

/** One setting's value from its text form; `name` is the variable or flag, for the error. */
export function parseValue(name: string, raw: string, kind: Kind): string | number | boolean {
  if (kind.type === "string") return raw;
  if (kind.type === "boolean") {
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  }
  if (kind.type === "enum") {
    if (!kind.values.includes(raw))
      throw new ConfigError(`${name} must be one of ${kind.values.join(", ")}, got "${raw}"`);
    return raw;
  }
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < kind.min || value > kind.max) {
    throw new ConfigError(`${name} must be an integer from ${kind.min} to ${kind.max}, got "${raw}"`);
  }
  return value;
}
