/**
 * The example's knobs, read from the environment. The seed read APP_MODE and PORT (and DATABASE_URL for its Repo)
 * and hard-coded the broker; here the broker and the database are knobs too. A bad value is a startup error that
 * names the variable, raised before anything listens or connects.
 */
import { join } from "node:path";

export type Mode = "engine" | "worker";

export type TodoConfig = {
  mode: Mode;
  /** HTTP port; 0 picks a free one. Default 4000, as the seed's dev config. */
  port: number;
  /** The interface to listen on; default all of them. */
  host: string | undefined;
  /** The broker; default the seed's `AMQP.Connection.open()` with no arguments. */
  amqpUrl: string;
  /** Engine only: a SQLite file path or a postgres:// URL. Default `<DATA_DIR>/ztd.db`. */
  database: string;
  /** Engine on PostgreSQL: the schema holding Conveyor's tables and the todo tables. Default "ztd". */
  schema: string;
};

export const DEFAULT_PORT = 4000;
export const DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672";
export const DEFAULT_DATA_DIR = "./tmp";
export const DEFAULT_SCHEMA = "ztd";

/** The seed's message for a bad APP_MODE (`ZTD.Todo.Config.mode/0`). */
export class UnknownModeError extends Error {
  override name = "UnknownModeError";
  constructor(value: string) {
    super(`Unknown Application Mode: ${JSON.stringify(value)} (APP_MODE must be engine or worker)`);
  }
}

export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** APP_MODE as the seed reads it: trimmed, any case; empty or unset is the engine. */
export function modeFromEnv(value: string | undefined): Mode {
  const mode = (value ?? "").trim().toLowerCase();
  if (mode === "" || mode === "engine") return "engine";
  if (mode === "worker") return "worker";
  throw new UnknownModeError(value ?? "");
}

/** The configuration from `env` (normally `process.env`); throws UnknownModeError or ConfigurationError. */
export function configFromEnv(env: Record<string, string | undefined>): TodoConfig {
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const mode = modeFromEnv(env.APP_MODE);
  const portText = text("PORT");
  const port = portText === undefined ? DEFAULT_PORT : /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!Number.isSafeInteger(port) || port > 65_535) {
    throw new ConfigurationError(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(env.PORT)}`);
  }
  const amqpUrl = text("AMQP_URL") ?? DEFAULT_AMQP_URL;
  if (!/^amqps?:\/\//i.test(amqpUrl)) {
    throw new ConfigurationError(`AMQP_URL must be an amqp:// or amqps:// URL, got ${JSON.stringify(amqpUrl)}`);
  }
  const database = text("CONVEYOR_DATABASE") ?? join(text("DATA_DIR") ?? DEFAULT_DATA_DIR, "ztd.db");
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1];
  if (scheme !== undefined && !/^postgres(ql)?$/i.test(scheme)) {
    throw new ConfigurationError(
      `CONVEYOR_DATABASE must be a SQLite file path or a postgres:// URL, got a ${scheme}:// URL`,
    );
  }
  const schema = text("CONVEYOR_SCHEMA") ?? DEFAULT_SCHEMA;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigurationError(
      `CONVEYOR_SCHEMA must be a lower-case SQL identifier (a-z, 0-9, _), got ${JSON.stringify(schema)}`,
    );
  }
  return { mode, port, host: text("HOST"), amqpUrl, database, schema };
}

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}
