/**
 * BullMQ on Redis. Its keys live under a prefix unique to this run (no FLUSHALL: the Redis may be shared),
 * and the queue is obliterated afterwards. Settings: one Worker at concurrency 50 (BullMQ's guidance for
 * throughput is concurrency, or more workers); completed jobs are kept, BullMQ's default, so the store can
 * be asked how many completed. drain-producer adds through a second Queue with its own connection; drain-self
 * and drain-resume through the Queue this process already has beside its Worker; the pause is Queue.pause(),
 * which is global and keeps what is added meanwhile.
 */
import { Queue, Worker } from "bullmq";
import { REDIS_URL } from "../lib/env.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";
import { packageVersion } from "./versions.ts";

export function create(job: ChildJob): BenchSystem {
  const url = new URL(REDIS_URL);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const prefix = `bench-${job.runId}`;
  const name = "noop";
  let queue: Queue | null = null;
  let producer: Queue | null = null;
  let worker: Worker | null = null;
  const batch = (count: number) => Array.from({ length: count }, () => ({ name, data: {} }));
  return {
    info: {
      name: "bullmq",
      kind: "peer",
      store: "redis",
      settings: `Queue.addBulk; one Worker, concurrency ${job.concurrency}; defaults otherwise`,
      drainPaths:
        "producer: a second Queue with its own connection; self: the Queue beside the Worker; pause: Queue.pause() / resume()",
      versions: { bullmq: packageVersion("bullmq"), ioredis: packageVersion("ioredis") },
    },
    async setup() {
      queue = new Queue(name, { connection, prefix });
      await queue.waitUntilReady();
    },
    async enqueueBatch(count) {
      await queue!.addBulk(batch(count));
    },
    async startWorkers(started) {
      worker = new Worker(name, async (j) => started(j.id!, (j.data as { t?: number }).t), {
        connection,
        prefix,
        concurrency: job.concurrency,
      });
      worker.on("error", (error) => process.stderr.write(`  bullmq worker error: ${String(error)}\n`));
      await worker.waitUntilReady();
    },
    async startProducer() {
      producer = new Queue(name, { connection, prefix });
      await producer.waitUntilReady();
    },
    async enqueueBatchFromProducer(count) {
      await producer!.addBulk(batch(count));
    },
    async enqueueBatchFromWorker(count) {
      await queue!.addBulk(batch(count));
    },
    async pauseQueue() {
      await queue!.pause();
    },
    async resumeQueue() {
      await queue!.resume();
    },
    async completedInStore() {
      return queue!.getCompletedCount();
    },
    async addOne(t0) {
      await queue!.add(name, { t: t0 });
    },
    async teardown() {
      try {
        await worker?.close();
        await producer?.close();
        // Attached, the keys belong to the process that made them.
        if (job.attach !== true) await queue?.obliterate({ force: true });
        await queue?.close();
      } catch (error) {
        process.stderr.write(`  bullmq teardown: ${String(error)}\n`);
      }
    },
  };
}
