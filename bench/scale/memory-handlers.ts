/**
 * Task types of the memory measurement, for `conveyor start --handlers`:
 * - `bench.memory.hold` stays running until its signal fires: the node's stop (with --grace-ms 0) hands the tasks
 *   back and signals them, and each handler returns at once, so a stop ends them cleanly however many are held.
 * - `bench.memory.gc`, in a queue of its own (so it runs while the default queue's slots are all held): two full
 *   garbage collections, so that the heap read from /metrics just after is what is live, not what awaits collection.
 *   It needs the node started with --expose-gc.
 */
import type { Conveyor } from "../../src/index.ts";

export const HOLD_TASK_TYPE = "bench.memory.hold";
export const GC_TASK_TYPE = "bench.memory.gc";
export const GC_QUEUE = "bench-memory-gc";

export default function register(conveyor: Conveyor): void {
  conveyor.define(HOLD_TASK_TYPE, (_data, ctx) => {
    const { signal } = ctx;
    return new Promise((resolve) => {
      if (signal.aborted) resolve(null);
      else signal.addEventListener("abort", () => resolve(null), { once: true });
    });
  });
  conveyor.define(
    GC_TASK_TYPE,
    () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc === undefined) throw new Error("global.gc is missing: start the node with --expose-gc");
      gc();
      gc();
      return null;
    },
    { queue: GC_QUEUE, maxAttempts: 1 },
  );
}
