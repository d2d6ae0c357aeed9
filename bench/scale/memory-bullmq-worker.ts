/**
 * The BullMQ side of the memory measurement, in a process of its own (started by memory-bullmq.ts with
 * --expose-gc): one Worker whose processor holds each job until the parent releases them all, so that its memory
 * with N jobs active can be read the way the Conveyor node's is (after two full garbage collections).
 */
import { Worker } from "bullmq";
import { childArgs, serve } from "../live/ipc.ts";

export type BullmqWorkerArgs = { redisUrl: string; prefix: string; queue: string; concurrency: number };

const args = childArgs<BullmqWorkerArgs>();
const held: (() => void)[] = [];

await serve(async () => {
  const url = new URL(args.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const worker = new Worker(args.queue, () => new Promise<void>((resolve) => held.push(resolve)), {
    connection,
    prefix: args.prefix,
    concurrency: args.concurrency,
  });
  worker.on("error", (error) => process.stderr.write(`  bullmq worker error: ${String(error)}\n`));
  await worker.waitUntilReady();
  const release = () => {
    for (const resolve of held.splice(0)) resolve();
  };
  return {
    ready: null,
    handlers: {
      memory: () => {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc === undefined) throw new Error("global.gc is missing: start the worker with --expose-gc");
        gc();
        gc();
        const { rss, heapUsed } = process.memoryUsage();
        return { rss, heapUsed, held: held.length };
      },
    },
    cleanup: async () => {
      release();
      await worker.close();
    },
  };
});
