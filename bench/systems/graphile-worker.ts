/**
 * Graphile Worker on PostgreSQL, in a fresh schema. Settings, from its performance docs ("batching"):
 * concurrency 50, `localQueue.size` 500, `completeJobBatchDelay` 0 and `failJobBatchDelay` 0; jobs added
 * with `addJobs`. Completed jobs are deleted by Graphile, so "completed" is N minus the rows left.
 *
 * The runner works on a pool made here (as Graphile would make it: 10 connections), so that drain-self can add
 * through that very pool: `addJobs` of a WorkerUtils on it (the runner's own `addJob` takes one job at a time).
 * drain-producer adds through a WorkerUtils of its own. Graphile has no queue pause, so no drain-resume.
 */
import pg from "pg";
import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type WorkerUtils } from "graphile-worker";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";
import { packageVersion } from "./versions.ts";

/** Graphile's own default pool size. */
const MAX_POOL_SIZE = 10;

const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`  graphile-worker: ${message}\n`);
});

export function create(job: ChildJob): BenchSystem {
  const schema = schemaName("graphile", job.runId);
  const preset = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } };
  let utils: WorkerUtils | null = null;
  let workerPool: pg.Pool | null = null;
  let workerUtils: WorkerUtils | null = null;
  let producer: WorkerUtils | null = null;
  let runner: Runner | null = null;
  let client: pg.Client | null = null;
  let added = 0;
  const addJobs = async (through: WorkerUtils, count: number) => {
    await through.addJobs(Array.from({ length: count }, () => ({ identifier: "noop", payload: {} })));
    added += count;
  };
  return {
    info: {
      name: "graphile-worker",
      kind: "peer",
      store: "postgres",
      settings: `concurrency ${job.concurrency}, localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0; addJobs() for batches`,
      drainPaths:
        "producer: a WorkerUtils of its own (makeWorkerUtils, own pool); self: addJobs() of a WorkerUtils on the runner's pool",
      versions: { "graphile-worker": packageVersion("graphile-worker") },
    },
    async setup() {
      client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      if (job.attach !== true) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await runMigrations({ connectionString: PG_URL, schema, logger: quiet });
      utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: quiet });
      workerPool = new pg.Pool({ connectionString: PG_URL, max: MAX_POOL_SIZE });
      // Both handlers, as Graphile installs on a pool it makes (it warns about a pool handed to it without them).
      const report = (error: Error) => process.stderr.write(`  graphile-worker pool: ${String(error)}\n`);
      workerPool.on("error", report);
      workerPool.on("connect", (connection) => connection.on("error", report));
      workerUtils = await makeWorkerUtils({ pgPool: workerPool, schema, logger: quiet });
    },
    async enqueueBatch(count) {
      await addJobs(utils!, count);
    },
    async startProducer() {
      producer = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: quiet });
    },
    async enqueueBatchFromProducer(count) {
      await addJobs(producer!, count);
    },
    async enqueueBatchFromWorker(count) {
      await addJobs(workerUtils!, count);
    },
    async startWorkers(started) {
      runner = await run({
        pgPool: workerPool!,
        schema,
        concurrency: job.concurrency,
        noHandleSignals: true,
        logger: quiet,
        preset,
        taskList: { noop: async (payload, helpers) => started(helpers.job.id, (payload as { t?: number }).t) },
      });
    },
    async completedInStore() {
      const { rows } = await client!.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}._private_jobs`);
      return added - rows[0]!.n;
    },
    async addOne(t0) {
      await utils!.addJob("noop", { t: t0 });
    },
    async teardown() {
      try {
        await runner?.stop();
        for (const each of [utils, workerUtils, producer]) await each?.release();
        await workerPool?.end();
      } catch (error) {
        process.stderr.write(`  graphile-worker stop: ${String(error)}\n`);
      }
      if (client !== null) {
        if (job.attach !== true) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
        await client.end().catch(() => {});
      }
    },
  };
}
