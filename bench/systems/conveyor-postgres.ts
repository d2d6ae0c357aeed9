/**
 * Conveyor on PostgreSQL: PostgresStore in a fresh schema, PostgresBus (LISTEN/NOTIFY) on a channel of its
 * own (started by the node's start()). Both modules are imported by computed path: until they exist (or when
 * they fail to load or connect), this system is reported as unavailable and the run carries on. The producer
 * has its own PostgresStore and PostgresBus on the same schema and channel, handed to a node that is never
 * started and left to it: whether its adds wake the workers or wait for their poll is what drain-producer
 * measures.
 */
import pg from "pg";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { ChildJob } from "../lib/types.ts";
import { conveyorSystem } from "./conveyor.ts";

type Closable = { close?: () => Promise<void>; start?: () => Promise<void> };

/** Works whether the module exports a class or a factory function. */
function construct(exported: unknown, what: string, options: object): Closable {
  if (typeof exported !== "function") throw new Error(`${what} is not exported`);
  try {
    return new (exported as new (o: object) => Closable)(options);
  } catch (error) {
    if (error instanceof TypeError && /not a constructor/.test(error.message))
      return (exported as (o: object) => Closable)(options);
    throw error;
  }
}

async function importSource(relative: string): Promise<Record<string, unknown>> {
  return (await import(new URL(relative, import.meta.url).href)) as Record<string, unknown>;
}

export function create(job: ChildJob) {
  const schema = schemaName("conveyor_postgres", job.runId);
  return conveyorSystem(
    {
      name: "conveyor-postgres",
      kind: "conveyor",
      store: "postgres",
      settings: `new Conveyor({ store: PostgresStore({ schema: <fresh> }), bus: PostgresBus(LISTEN/NOTIFY), concurrency: ${job.concurrency} }); defaults otherwise (claim batch 50)`,
      drainPaths: `producer: a second Conveyor, never started, with its own PostgresStore and PostgresBus on the same schema and channel; self: enqueueMany on the started node; pause: pauseQueue / resumeQueue("default")`,
    },
    job,
    async () => {
      const { PostgresStore } = await importSource("../../src/store/postgres/postgres-store.ts");
      const { PostgresBus } = await importSource("../../src/bus/postgres-bus.ts");
      const storeAndBus = () => ({
        store: construct(PostgresStore, "PostgresStore", { connectionString: PG_URL, schema }),
        bus: construct(PostgresBus, "PostgresBus", { connectionString: PG_URL, channel: `${schema}_bus` }),
      });
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.query(`CREATE SCHEMA ${schema}`);
      } finally {
        await admin.end();
      }
      const { store, bus } = storeAndBus();
      // Conveyor.start() starts the bus it is given; before that, its signals still reach this node's own parts.
      return {
        options: { store: store as never, bus: bus as never },
        producer: async () => {
          const own = storeAndBus();
          return {
            options: { store: own.store as never, bus: own.bus as never },
            close: async () => {
              await own.bus.close?.();
              await own.store.close?.();
            },
          };
        },
        cleanup: async () => {
          // The node closes only what it opened: the bus and the store are ours to close.
          await bus.close?.();
          await store.close?.();
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
        },
      };
    },
  );
}
