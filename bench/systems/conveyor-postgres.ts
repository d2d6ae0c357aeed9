/**
 * Conveyor on PostgreSQL, opened the way a user opens it: `new Conveyor({ database: "postgres://…", schema })`,
 * in a fresh schema, with the LISTEN/NOTIFY bus the URL brings (runtime/connect.ts). The producer is a second node
 * on the same schema, never started: whether its adds wake the workers or wait for their poll is what
 * drain-producer measures.
 */
import pg from "pg";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { ChildJob } from "../lib/types.ts";
import { conveyorSystem } from "./conveyor.ts";

export function create(job: ChildJob) {
  const schema = schemaName("conveyor_postgres", job.runId);
  return conveyorSystem(
    {
      name: "conveyor-postgres",
      kind: "conveyor",
      store: "postgres",
      settings: `new Conveyor({ database: "postgres://…", schema: <fresh>, concurrency: ${job.concurrency} }) (LISTEN/NOTIFY bus); defaults otherwise (claim batch 50)`,
      drainPaths: `producer: a second Conveyor on the same schema, never started (its own store and bus); self: enqueueMany on the started node; pause: pauseQueue / resumeQueue("default")`,
    },
    job,
    async () => {
      if (job.attach !== true) {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        try {
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await admin.end();
        }
      }
      const options = { database: PG_URL, schema };
      return {
        // The nodes open their store and bus for the URL, and close them when they stop.
        options,
        producer: async () => ({ options, close: async () => {} }),
        cleanup: async () => {
          if (job.attach === true) return; // the process that made the schema drops it
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
        },
      };
    },
  );
}
