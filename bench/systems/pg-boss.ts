/**
 * pg-boss on PostgreSQL, in a fresh schema. Settings, from its docs on workers and throughput:
 * `useListenNotify` with a `notify: true` queue (workers wake on insert instead of the 2 s poll), batch
 * fetching with `batchSize` 50 (one fetch fills the 50 slots, as Conveyor's claim of 50 does), 4 fetchers
 * (`localConcurrency`, the setting of the CEO's better pg-boss figure) and `burstWhenBatchFull` (fetch again
 * at once while batches come back full). This lets up to 200 jobs be in flight, which favours pg-boss:
 * 10 × 5 (50 in flight) drained 1.3k/s here against 4.5k/s for 50 × 4. Override with
 * BENCH_PGBOSS_BATCH and BENCH_PGBOSS_LOCAL_CONCURRENCY. drain-producer sends through a second PgBoss
 * instance that only sends (no supervision, scheduling or migration of its own; the queue's notify makes
 * its inserts wake the workers all the same); drain-self through the instance that runs `work`. pg-boss has
 * no queue pause that keeps jobs, so no drain-resume.
 */
import pg from "pg";
import { PgBoss } from "pg-boss";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";
import { packageVersion } from "./versions.ts";

const LOCAL_CONCURRENCY = Number(process.env.BENCH_PGBOSS_LOCAL_CONCURRENCY ?? 4);

export function create(job: ChildJob): BenchSystem {
  const schema = schemaName("pgboss", job.runId);
  const name = "noop";
  const batchSize = Number(process.env.BENCH_PGBOSS_BATCH ?? job.concurrency);
  let boss: PgBoss | null = null;
  let producer: PgBoss | null = null;
  let client: pg.Client | null = null;
  const batch = (count: number) => Array.from({ length: count }, () => ({ data: {} }));
  return {
    info: {
      name: "pg-boss",
      kind: "peer",
      store: "postgres",
      settings: `useListenNotify + queue notify; work({ batchSize: ${batchSize}, localConcurrency: ${LOCAL_CONCURRENCY}, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }); insert() for batches`,
      drainPaths:
        "producer: a second PgBoss instance that only sends (supervise, schedule and migrate off); self: the instance that runs work()",
      versions: { "pg-boss": packageVersion("pg-boss") },
    },
    async setup() {
      client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      if (job.attach !== true) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      boss = new PgBoss({ connectionString: PG_URL, schema, useListenNotify: true });
      boss.on("error", (error) => process.stderr.write(`  pg-boss error: ${String(error)}\n`));
      await boss.start();
      // Attached, the queue is there already (creating it again fails).
      if (job.attach !== true) await boss.createQueue(name, { notify: true });
    },
    async enqueueBatch(count) {
      await boss!.insert(name, batch(count));
    },
    async startProducer() {
      producer = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false, migrate: false });
      producer.on("error", (error) => process.stderr.write(`  pg-boss producer error: ${String(error)}\n`));
      await producer.start();
    },
    async enqueueBatchFromProducer(count) {
      await producer!.insert(name, batch(count));
    },
    async enqueueBatchFromWorker(count) {
      await boss!.insert(name, batch(count));
    },
    async startWorkers(started) {
      await boss!.work<{ t?: number }>(
        name,
        { batchSize, localConcurrency: LOCAL_CONCURRENCY, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
        async (jobs) => {
          for (const j of jobs) started(j.id, j.data.t);
        },
      );
    },
    async completedInStore() {
      const { rows } = await client!.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1 AND state = 'completed'`,
        [name],
      );
      return rows[0]!.n;
    },
    async addOne(t0) {
      await boss!.send(name, { t: t0 });
    },
    async teardown() {
      try {
        await producer?.stop({ graceful: true, timeout: 5000 });
        await boss?.stop({ graceful: true, timeout: 5000 });
      } catch (error) {
        process.stderr.write(`  pg-boss stop: ${String(error)}\n`);
      }
      if (client !== null) {
        if (job.attach !== true) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
        await client.end().catch(() => {});
      }
    },
  };
}
