/**
 * BullMQ's memory with more and more jobs active, as a comparison row: a Worker at the highest concurrency in a
 * process of its own (memory-bullmq-worker.ts), jobs added by this process's Queue until Redis says that many are
 * active, and after a settle, RSS and heap used read in the worker's process after two forced garbage collections.
 */
import { Queue } from "bullmq";
import { REDIS_URL } from "../lib/env.ts";
import { startChild } from "../live/ipc.ts";
import type { BullmqWorkerArgs } from "./memory-bullmq-worker.ts";
import type { MemoryPoint } from "./memory-point.ts";

const QUEUE = "hold";
const BATCH = 1000;

export async function bullmqMemory(
  levels: number[],
  settleMs: number,
  progress: (line: string) => void,
): Promise<MemoryPoint[]> {
  const url = new URL(REDIS_URL);
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const prefix = `bench-scale-memory-${Date.now().toString(36)}`;
  const queue = new Queue(QUEUE, { connection, prefix });
  await queue.waitUntilReady();
  const args: BullmqWorkerArgs = { redisUrl: REDIS_URL, prefix, queue: QUEUE, concurrency: Math.max(1, ...levels) };
  const { peer } = await startChild("bullmq worker", new URL("./memory-bullmq-worker.ts", import.meta.url), {
    args,
    execArgv: ["--expose-gc"],
  });
  try {
    const points: MemoryPoint[] = [];
    let added = 0;
    for (const level of levels) {
      while (added < level) {
        const count = Math.min(BATCH, level - added);
        await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: QUEUE, data: { n: added + i } })));
        added += count;
      }
      const deadline = Date.now() + 120_000;
      let active = await queue.getActiveCount();
      while (active < level && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        active = await queue.getActiveCount();
      }
      if (active !== level) throw new Error(`${level} jobs added, ${active} active`);
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      const memory = await peer.call<{ rss: number; heapUsed: number; held: number }>("memory");
      if (memory.held !== level) throw new Error(`${level} jobs active, the worker holds ${memory.held}`);
      const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
      points.push({ inFlight: level, rssMB: mb(memory.rss), heapUsedMB: mb(memory.heapUsed) });
      progress(
        `memory bullmq ${level}/${levels.at(-1)} active: RSS ${mb(memory.rss)} MB, heap ${mb(memory.heapUsed)} MB…`,
      );
    }
    return points;
  } finally {
    await peer.stop();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}
