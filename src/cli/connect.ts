/**
 * Turns `--database` and `--amqp` into a store and a bus: a path is a SQLite file (in-process bus), a
 * postgres:// URL is a PostgreSQL cluster store (LISTEN/NOTIFY bus, or RabbitMQ when --amqp is given).
 */
import type { Logger } from "pino";
import type { Bus } from "../bus/bus.ts";
import { AmqpBus } from "../bus/amqp-bus.ts";
import { LocalBus } from "../bus/local-bus.ts";
import { PostgresBus } from "../bus/postgres-bus.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { SqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";

export const DEFAULT_DATABASE = "./.conveyor/conveyor.db";

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

export type Connection = { store: Store; bus: Bus; description: string };

export function connect(options: { database?: string; schema?: string; amqp?: string; logger?: Logger }): Connection {
  const database = options.database ?? DEFAULT_DATABASE;
  if (!isPostgresUrl(database)) {
    return { store: new SqliteStore({ path: database }), bus: new LocalBus(), description: `SQLite ${database}` };
  }
  const schema = options.schema ?? "conveyor";
  const store = new PostgresStore({ connectionString: database, schema });
  const bus =
    options.amqp !== undefined
      ? new AmqpBus({ url: options.amqp, exchange: `conveyor.${schema}`, logger: options.logger })
      : new PostgresBus({ connectionString: database, channel: schema, logger: options.logger });
  const where = new URL(database);
  const description = `PostgreSQL ${where.host}${where.pathname} schema ${schema}, bus ${options.amqp !== undefined ? "RabbitMQ" : "LISTEN/NOTIFY"}`;
  return { store, bus, description };
}
