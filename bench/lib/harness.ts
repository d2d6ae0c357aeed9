/**
 * Runs the workloads against one system, the same way for every system:
 *
 * - enqueue: N tasks through the system's bulk API in batches of `batch`, one call after another;
 * - drain: the N tasks just added (so they are "pre-added"), worked at concurrency 50; the clock runs from
 *   the call that starts the workers until the store itself says N are completed (a handler counter only
 *   says when to start asking, so completions still buffered in memory do not count);
 * - latency: `latencyCount` single tasks, one every `latencyIntervalMs`, to the now idle worker; the time
 *   from just before the add call to the first line of the handler.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startProfiling } from "./profiler.ts";
import type { BenchSystem, ChildJob, LatencyFigures, SystemResult, Workload } from "./types.ts";

/** Epoch milliseconds with sub-millisecond precision, comparable across the adding and the handling code. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function progressLine(text: string): void {
  process.stderr.write(`  ${text}\n`);
}

/** Prints `label done/total…` once a second while `work` runs. */
async function withProgress<T>(label: string, total: number, done: () => number, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => progressLine(`${label} ${done()}/${total}…`), 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Resolves when `condition()` holds, checking every `everyMs`; rejects with `describe()` after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, everyMs: number, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${describe()}`);
    await sleep(everyMs);
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${describe()}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function percentiles(samples: number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
  const round = (x: number) => Math.round(x * 100) / 100;
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length);
  return { count: sorted.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), mean: round(mean), max: round(at(1)) };
}

export async function runSystem(system: BenchSystem, job: ChildJob): Promise<SystemResult> {
  const { name } = system.info;
  const result: SystemResult = { info: system.info, status: "ok", n: job.n };
  /** Runs one workload's timed part, under the profiler when asked (the profile covers exactly that part). */
  const timed = async <T>(workload: Workload, work: () => Promise<T>): Promise<T> => {
    if (job.profileDir === undefined) return work();
    const profiling = await startProfiling(job.profileDir, `${name}-${workload}`);
    try {
      return await work();
    } finally {
      (result.profiles ??= []).push(await profiling.stop());
    }
  };
  try {
    await system.setup();
  } catch (error) {
    await system.teardown();
    return { ...result, status: "unavailable", reason: reasonOf(error) };
  }
  // Generous bounds: a system that is merely slow still finishes; one that hangs is reported, not waited on forever.
  const timeoutMs = 30_000 + job.n * 5;
  try {
    if (job.workloads.includes("enqueue") || job.workloads.includes("drain")) {
      let added = 0;
      const t0 = performance.now();
      await timed("enqueue", () => withProgress(`${name} enqueue`, job.n, () => added, async () => {
        while (added < job.n) {
          const count = Math.min(job.batch, job.n - added);
          await system.enqueueBatch(count);
          added += count;
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      result.enqueue = { seconds, perSecond: job.n / seconds };
      progressLine(`${name} enqueue ${job.n}/${job.n} in ${seconds.toFixed(2)} s → ${fmtRate(result.enqueue.perSecond)}/s`);
      if (!job.workloads.includes("enqueue")) delete result.enqueue;
    }

    const seen = new Set<string | number>();
    let calls = 0;
    const latencies: number[] = [];
    // Resolved from the handler itself, so waiting for the last start costs no polling.
    let allStarted: () => void = () => {};
    const allStartedPromise = new Promise<void>((resolve) => (allStarted = resolve));
    const started = (id: string | number, addedAt?: number) => {
      if (addedAt !== undefined) {
        latencies.push(epochMs() - addedAt);
        return;
      }
      calls++;
      seen.add(id);
      if (seen.size === job.n) allStarted();
    };

    if (job.workloads.includes("drain")) {
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      const t0 = performance.now();
      if (system.drainLoop !== undefined) {
        let done = 0;
        const completed = await timed("drain", () => withProgress(`${name} drain`, job.n, () => done, () => system.drainLoop!((d) => (done = d))));
        if (completed !== job.n) throw new Error(`the claim loop completed ${completed} rows, expected ${job.n}`);
        calls = completed;
        for (let i = 0; i < completed; i++) seen.add(i);
      } else {
        await timed("drain", () => withProgress(`${name} drain`, job.n, () => calls, async () => {
          await system.startWorkers!(started);
          await withTimeout(allStartedPromise, timeoutMs, () => `${seen.size}/${job.n} tasks started`);
          let inStore = 0;
          const completed = async () => (inStore = await system.completedInStore!()) >= job.n;
          const drained = system.drainedInStore === undefined ? completed : async () => (await system.drainedInStore!()) && (await completed());
          await until(drained, 5, timeoutMs, () => `the store says ${inStore}/${job.n} completed`);
        }));
      }
      const seconds = (performance.now() - t0) / 1000;
      await sleep(25); // the monitor records a delay when its timer finally runs: give it the chance
      loopDelay.disable();
      const maxTimerDelayMs = Math.round(loopDelay.max / 1e6);
      result.drain = { seconds, perSecond: job.n / seconds, duplicates: calls - seen.size, distinct: seen.size, maxTimerDelayMs };
      progressLine(`${name} drain ${job.n}/${job.n} in ${seconds.toFixed(2)} s → ${fmtRate(result.drain.perSecond)}/s (longest timer delay ${maxTimerDelayMs} ms)`);
      if (seen.size !== job.n) throw new Error(`drain ran ${seen.size} distinct tasks, expected ${job.n}`);
    } else if (system.startWorkers !== undefined && job.workloads.includes("latency")) {
      await system.startWorkers(started);
    }

    if (job.workloads.includes("latency") && system.addOne !== undefined) {
      await sleep(250); // let the worker go idle: waiting for a wake-up, not finishing the drain's tail
      const t0 = performance.now();
      await timed("latency", () => withProgress(`${name} latency`, job.latencyCount, () => latencies.length, async () => {
        for (let i = 0; i < job.latencyCount; i++) {
          const added = epochMs();
          await system.addOne!(added);
          // A raw store has no worker: its figure is the insert's own round trip, the floor under add→start.
          if (system.info.kind === "raw") latencies.push(epochMs() - added);
          const next = t0 + (i + 1) * job.latencyIntervalMs;
          const wait = next - performance.now();
          if (wait > 0) await sleep(wait);
        }
        await until(() => latencies.length >= job.latencyCount, 1, 30_000, () => `${latencies.length}/${job.latencyCount} latency tasks started`);
      }));
      result.latency = percentiles(latencies);
      progressLine(`${name} latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`);
    }
    if (calls !== seen.size) progressLine(`${name}: ${calls - seen.size} tasks ran more than once`);
  } catch (error) {
    result.status = "failed";
    result.reason = reasonOf(error);
  } finally {
    await system.teardown();
  }
  return result;
}

export function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const first = error.message.split("\n")[0] ?? "";
    return typeof code === "string" && !first.includes(code) ? `${code}: ${first}` : first;
  }
  return String(error);
}

export function fmtRate(perSecond: number): string {
  if (perSecond >= 100_000) return `${Math.round(perSecond / 1000)}k`;
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k`;
  return `${Math.round(perSecond)}`;
}
