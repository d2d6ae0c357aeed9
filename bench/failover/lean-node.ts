/**
 * A Conveyor node for the failover bench's load part: like `conveyor start` without the HTTP server, on a store
 * pool of 3 connections, so that 10 nodes fit in the PostgreSQL server's connection limit beside other users (the
 * CLI's pool is 10). Its heartbeat, lease, membership and polling are the CLI node's. Argument: a JSON
 * {database, schema, name, heartbeatMs?}; prints "READY" once started; runs until killed.
 */
import pino from "pino";
import { PostgresBus } from "../../src/bus/postgres-bus.ts";
import { Conveyor } from "../../src/index.ts";
import { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import register from "./handlers.ts";

const { database, schema, name, heartbeatMs } = JSON.parse(process.argv[2]!) as {
  database: string;
  schema: string;
  name: string;
  heartbeatMs?: number;
};
const store = new PostgresStore({ connectionString: database, schema, poolSize: 3 });
const bus = new PostgresBus({ connectionString: database, channel: schema });
const conveyor = new Conveyor({
  store,
  bus,
  nodeName: name,
  logger: pino({ level: "warn" }),
  ...(heartbeatMs === undefined ? {} : { heartbeatIntervalMs: heartbeatMs }),
});
register(conveyor);
await conveyor.start();
process.stdout.write("READY\n");
