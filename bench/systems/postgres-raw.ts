/**
 * PostgreSQL's physical limit: the claim-and-complete loop with no runtime around it, through pg, 4 clients
 * at once, in a fresh schema. A minimal tasks table with a claim index (queue, priority DESC, id WHERE
 * state = 'queued'), no event log.
 *
 * - enqueue: one multi-row INSERT (unnest of the batch's payloads) per batch of 500;
 * - drain: per batch, a `FOR UPDATE SKIP LOCKED` CTE claiming 50, then `UPDATE … WHERE id = ANY($1)`;
 *   each statement its own transaction, as a runtime would run them;
 * - latency: one single-row INSERT, autocommit, per latency task: its round trip is the floor under any
 *   durable add→start on this server (a task cannot start before its insert has committed).
 */
import pg from "pg";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";

const CLAIM_LIMIT = 50;
const CLIENTS = 4;

export function create(job: ChildJob): BenchSystem {
  const schema = schemaName("postgres_raw", job.runId);
  let admin: pg.Client | null = null;
  return {
    info: {
      name: "postgres-raw",
      kind: "raw",
      store: "postgres",
      settings: `pg, ${CLIENTS} clients; SKIP LOCKED CTE claim of ${CLAIM_LIMIT} + UPDATE … WHERE id = ANY($1), each autocommit`,
    },
    async setup() {
      admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      if (job.attach === true) return; // the table is there: another process made it
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`
        CREATE TABLE ${schema}.tasks (
          id bigserial PRIMARY KEY,
          queue text NOT NULL,
          type text NOT NULL,
          data jsonb NOT NULL DEFAULT 'null',
          priority integer NOT NULL DEFAULT 0,
          state text NOT NULL,
          attempt integer NOT NULL DEFAULT 0,
          node text,
          created_at timestamptz NOT NULL DEFAULT now(),
          started_at timestamptz,
          finished_at timestamptz
        );
        CREATE INDEX tasks_claim ON ${schema}.tasks (queue, priority DESC, id) WHERE state = 'queued';`);
    },
    async enqueueBatch(count) {
      const payloads = Array.from({ length: count }, () => "null");
      await admin!.query({
        name: "raw-insert",
        text: `INSERT INTO ${schema}.tasks (queue, type, data, state) SELECT 'default', 'bench.noop', d, 'queued' FROM unnest($1::jsonb[]) AS d`,
        values: [payloads],
      });
    },
    async addOne() {
      // The floor under add→start: one durable single-row insert, autocommit (the commit waits for the WAL flush).
      await admin!.query({
        name: "raw-insert-one",
        text: `INSERT INTO ${schema}.tasks (queue, type, data, state) VALUES ('latency', 'bench.noop', 'null', 'queued')`,
      });
    },
    async drainLoop(progress) {
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          return client;
        }),
      );
      let done = 0;
      const loop = async (client: pg.Client) => {
        for (;;) {
          const claimed = await client.query<{ id: string }>({
            name: "raw-claim",
            text: `
              WITH next AS (
                SELECT id FROM ${schema}.tasks WHERE state = 'queued' AND queue = 'default'
                ORDER BY priority DESC, id LIMIT ${CLAIM_LIMIT}
                FOR UPDATE SKIP LOCKED
              )
              UPDATE ${schema}.tasks t SET state = 'running', attempt = t.attempt + 1, node = 'bench', started_at = now()
              FROM next WHERE t.id = next.id
              RETURNING t.id`,
          });
          if (claimed.rows.length === 0) return;
          const completed = await client.query({
            name: "raw-complete",
            text: `UPDATE ${schema}.tasks SET state = 'completed', finished_at = now() WHERE id = ANY($1::bigint[]) AND state = 'running'`,
            values: [claimed.rows.map((r) => r.id)],
          });
          done += completed.rowCount ?? 0;
          progress(done);
        }
      };
      try {
        await Promise.all(clients.map(loop));
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
      return done;
    },
    async teardown() {
      if (admin === null) return;
      if (job.attach !== true) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
    },
  };
}
