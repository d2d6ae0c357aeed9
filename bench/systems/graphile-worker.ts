/**
 * Graphile Worker on PostgreSQL, in a fresh schema. Settings, from its performance docs ("batching"):
 * concurrency 50, `localQueue.size` 500, `completeJobBatchDelay` 0 and `failJobBatchDelay` 0; jobs added
 * with `addJobs`. Completed jobs are deleted by Graphile, so "completed" is N minus the rows left.
 */
import pg from "pg";
import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type WorkerUtils } from "graphile-worker";
import { PG_URL, schemaName } from "../lib/env.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";
import { packageVersion } from "./versions.ts";

const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`  graphile-worker: ${message}\n`);
});

export function create(job: ChildJob): BenchSystem {
  const schema = schemaName("graphile", job.runId);
  const preset = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } };
  let utils: WorkerUtils | null = null;
  let runner: Runner | null = null;
  let client: pg.Client | null = null;
  let added = 0;
  return {
    info: {
      name: "graphile-worker", kind: "peer", store: "postgres",
      settings: `concurrency ${job.concurrency}, localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0; addJobs() for batches`,
      versions: { "graphile-worker": packageVersion("graphile-worker") },
    },
    async setup() {
      client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await runMigrations({ connectionString: PG_URL, schema, logger: quiet });
      utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: quiet });
    },
    async enqueueBatch(count) {
      await utils!.addJobs(Array.from({ length: count }, () => ({ identifier: "noop", payload: {} })));
      added += count;
    },
    async startWorkers(started) {
      runner = await run({
        connectionString: PG_URL, schema, concurrency: job.concurrency, noHandleSignals: true, logger: quiet, preset,
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
        await utils?.release();
      } catch (error) {
        process.stderr.write(`  graphile-worker stop: ${String(error)}\n`);
      }
      if (client !== null) {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
        await client.end().catch(() => {});
      }
    },
  };
}
