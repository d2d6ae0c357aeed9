/**
 * The one place that names the drivers: turns a database path or URL into a store and a bus. A `postgres://` (or
 * `postgresql://`) URL opens PostgreSQL, whose nodes hear each other over LISTEN/NOTIFY, or over RabbitMQ when
 * `amqp` is given; any other URL is refused; anything else is the path of a SQLite file, for one host, with the
 * in-process bus (processes sharing the file find each other's work by polling).
 */
import type { Bus } from "../bus/bus.ts";
import { AmqpBus } from "../bus/amqp-bus.ts";
import { LocalBus } from "../bus/local-bus.ts";
import { PostgresBus } from "../bus/postgres-bus.ts";
import type { BusLogger } from "../bus/remote-bus.ts";
import { ConfigError } from "../core/errors.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { SqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";

export const DEFAULT_DATABASE = "./.conveyor/conveyor.db";
export const DEFAULT_SCHEMA = "conveyor";

export type ConnectOptions = {
  /** A SQLite file path, or a postgres:// URL. Default ./.conveyor/conveyor.db. */
  database?: string | undefined;
  /** PostgreSQL only: the schema of this install. Default "conveyor". */
  schema?: string | undefined;
  /** PostgreSQL only: carry the cluster's signals over this RabbitMQ server instead of LISTEN/NOTIFY. */
  amqp?: string | undefined;
  logger?: BusLogger | undefined;
};

export type Connection = {
  store: Store;
  bus: Bus;
  /** Where it is, in words, for logs: "SQLite ./x.db", "PostgreSQL host/db schema s, bus LISTEN/NOTIFY". */
  description: string;
};

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/** Opens nothing yet (the store connects on first use, the bus on start()); throws ConfigError for what it cannot open. */
export function connect(options: ConnectOptions = {}): Connection {
  const database = options.database ?? DEFAULT_DATABASE;
  if (typeof database !== "string" || database.trim() === "") throw new ConfigError("database must be a path or a URL");
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1];
  if (scheme !== undefined && !isPostgresUrl(database)) {
    throw new ConfigError(`cannot open a ${scheme}:// database: give a SQLite file path or a postgres:// URL`);
  }
  const store: Store = isPostgresUrl(database)
    ? new PostgresStore({ connectionString: database, schema: options.schema ?? DEFAULT_SCHEMA })
    : new SqliteStore({ path: database });
  if (!store.capabilities.multiHost && options.schema !== undefined) {
    throw new ConfigError(`a schema applies to PostgreSQL only; ${database} is a SQLite file`);
  }
  if (!store.capabilities.multiHost && options.amqp !== undefined) {
    throw new ConfigError(
      `a RabbitMQ bus joins nodes on many hosts, and a SQLite file serves one: use a postgres:// URL`,
    );
  }
  return { store, bus: busFor(store, database, options), description: describe(database, options) };
}

/** A store that can notify (PostgreSQL) gets a cross-node bus; one that cannot gets the in-process bus. */
function busFor(store: Store, database: string, options: ConnectOptions): Bus {
  if (!store.capabilities.notifications) return new LocalBus();
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (options.amqp !== undefined)
    return new AmqpBus({ url: options.amqp, exchange: `conveyor.${schema}`, logger: options.logger });
  return new PostgresBus({ connectionString: database, channel: schema, logger: options.logger });
}

function describe(database: string, options: ConnectOptions): string {
  if (!isPostgresUrl(database)) return `SQLite ${database}`;
  const where = new URL(database);
  const bus = options.amqp !== undefined ? "RabbitMQ" : "LISTEN/NOTIFY";
  return `PostgreSQL ${where.host}${where.pathname} schema ${options.schema ?? DEFAULT_SCHEMA}, bus ${bus}`;
}
