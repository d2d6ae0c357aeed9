/**
 * A `conveyor start` node's memory with more and more tasks running at once: tasks of a type that holds until its
 * signal fires (memory-handlers.ts) are added over HTTP until the store says that many are running, and after a
 * settle and a forced GC, RSS and heap used are read from the node's /metrics (bench/soak's scrape).
 */
import { fileURLToPath } from "node:url";
import { startCliNode } from "../lib/cli-node.ts";
import { scrape } from "../soak/node-metrics.ts";
import { type StoreKind, waitForCounts, withFreshStore } from "./http-store.ts";
import { GC_QUEUE, GC_TASK_TYPE, HOLD_TASK_TYPE } from "./memory-handlers.ts";
import type { MemoryPoint } from "./memory-point.ts";

const HANDLERS = fileURLToPath(new URL("./memory-handlers.ts", import.meta.url));
/** The API's bulk limit. */
const BULK = 1000;

export async function conveyorMemory(
  store: StoreKind,
  levels: number[],
  settleMs: number,
  progress: (line: string) => void,
): Promise<MemoryPoint[]> {
  const label = `conveyor-${store}`;
  return withFreshStore(store, `memory_${store}`, async (place) => {
    const node = await startCliNode({
      name: `scale-memory-${store}`,
      ...place,
      handlers: HANDLERS,
      concurrency: Math.max(1, ...levels),
      env: {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --expose-gc`.trim(),
        // The stop hands the held tasks back at once and signals them, rather than waiting 10 s for them.
        CONVEYOR_SHUTDOWN_GRACE_MS: "0",
      },
    });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${node.url}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    try {
      const points: MemoryPoint[] = [];
      let added = 0;
      for (const level of levels) {
        while (added < level) {
          const count = Math.min(BULK, level - added);
          const tasks = Array.from({ length: count }, (_, i) => ({ type: HOLD_TASK_TYPE, data: { n: added + i } }));
          await call("POST", "/api/tasks/bulk", { tasks });
          added += count;
        }
        const running = await waitForCounts(node.url, (c) => (c.running ?? 0) >= level, 120_000);
        if (!running.reached || (running.counts.running ?? 0) !== level)
          throw new Error(
            `${level} tasks added, ${running.counts.running ?? 0} running: ${JSON.stringify(running.counts)}`,
          );
        await new Promise((resolve) => setTimeout(resolve, settleMs));
        const { task } = (await call("POST", "/api/tasks", { type: GC_TASK_TYPE, queue: GC_QUEUE })) as {
          task: { id: number };
        };
        await call("GET", `/api/tasks/${task.id}/result?wait=30`);
        const sample = await scrape(node.url, 0);
        points.push({ inFlight: level, rssMB: sample.rssMB, heapUsedMB: sample.heapUsedMB });
        progress(
          `memory ${label} ${level}/${levels.at(-1)} running: RSS ${sample.rssMB} MB, heap ${sample.heapUsedMB} MB…`,
        );
      }
      return points;
    } finally {
      await node.stop();
    }
  });
}
