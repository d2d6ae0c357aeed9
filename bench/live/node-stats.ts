/**
 * What every process of the live bench reports about itself: its resident memory (after a full GC, so that garbage
 * awaiting collection is not counted as connections' memory), its CPU time, and how long its event loop was held
 * up (a stall in a server delays every client it serves; one in a load generator inflates the latencies it
 * measures, which is why both are reported).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate } from "node:timers/promises";

export type LoopDelay = { p99: number; max: number };

export function processStats() {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return {
    rss: async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      for (let i = 0; i < 3; i++) {
        gc?.();
        await setImmediate();
      }
      return process.memoryUsage().rss;
    },
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    },
    /** The event loop's delay since the last call (ms). */
    loopDelay: (): LoopDelay => {
      const figures = { p99: round1(loop.percentile(99) / 1e6), max: round1(loop.max / 1e6) };
      loop.reset();
      return figures;
    },
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
