/**
 * Runs the workloads against one system, the same way for every system:
 *
 * - enqueue: N tasks through the system's bulk API in batches of `batch`, one call after another;
 * - drain: the N tasks just added (so they are "pre-added"), worked at concurrency 50; the clock runs from
 *   the call that starts the workers until the store itself says N are completed (a handler counter only
 *   says when to start asking, so completions still buffered in memory do not count);
 * - drain-producer, drain-self: workers started on an empty store, then N tasks added in batches through a
 *   separate producer, or through the instance running the workers; the clock runs from the first add;
 * - drain-resume: workers started, their queue paused, N tasks added; the clock runs from the resume;
 * - latency: `latencyCount` single tasks, one every `latencyIntervalMs`, to the now idle worker; the time
 *   from just before the add call to the first line of the handler.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startProfiling } from "./profiler.ts";
import { isDrainVariant } from "./types.ts";
import type {
  BenchSystem,
  ChildJob,
  DrainFigures,
  DrainWorkload,
  LatencyFigures,
  SystemResult,
  TaskStarted,
  Workload,
} from "./types.ts";

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
export async function until(
  condition: () => boolean | Promise<boolean>,
  everyMs: number,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${describe()}`);
    await sleep(everyMs);
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${describe()}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function percentiles(samples: number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
  const round = (x: number) => Math.round(x * 100) / 100;
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length);
  return {
    count: sorted.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    mean: round(mean),
    max: round(at(1)),
  };
}

/** How long tasks added to a paused queue are given to (wrongly) start before the resume. */
const PAUSED_CHECK_MS = 250;

/** Which workloads a system has a path for: a raw loop has no workers to feed, some peers have no pause. */
function hasWorkload(system: BenchSystem, workload: Workload): boolean {
  const runtime = system.startWorkers !== undefined;
  switch (workload) {
    case "enqueue":
      return true;
    case "drain":
      return runtime || system.drainLoop !== undefined;
    case "drain-producer":
      return runtime && system.startProducer !== undefined && system.enqueueBatchFromProducer !== undefined;
    case "drain-self":
      return runtime && system.enqueueBatchFromWorker !== undefined;
    case "drain-resume":
      return runtime && system.pauseQueue !== undefined && system.resumeQueue !== undefined;
    case "latency":
      return system.addOne !== undefined;
  }
}

/** What the handlers report: the distinct tasks started (the drain's check), every start (duplicates), latencies. */
class StartLog {
  readonly seen = new Set<string | number>();
  calls = 0;
  readonly latencies: number[] = [];
  /** Resolved from the handler itself, so waiting for the last start costs no polling. */
  readonly allStarted: Promise<void>;
  #allStarted: () => void = () => {};
  readonly #n: number;

  constructor(n: number) {
    this.#n = n;
    this.allStarted = new Promise((resolve) => (this.#allStarted = resolve));
  }

  readonly started: TaskStarted = (id, addedAt) => {
    if (addedAt !== undefined) {
      this.latencies.push(epochMs() - addedAt);
      return;
    }
    this.calls++;
    this.seen.add(id);
    if (this.seen.size === this.#n) this.#allStarted();
  };
}

type Timed = <T>(workload: Workload, work: () => Promise<T>) => Promise<T>;

export async function runSystem(system: BenchSystem, job: ChildJob): Promise<SystemResult> {
  const { name } = system.info;
  const result: SystemResult = { info: system.info, status: "ok", n: job.n };
  const lacking = job.workloads.filter((w) => !hasWorkload(system, w));
  if (lacking.length > 0) result.notApplicable = lacking;
  const workloads = job.workloads.filter((w) => hasWorkload(system, w));
  if (workloads.length === 0) return result; // nothing to measure, so no store to make
  const variant = workloads.find(isDrainVariant);
  if (variant !== undefined && workloads.length > 1) {
    return {
      ...result,
      status: "failed",
      reason: `${variant} runs alone: it needs an empty store and workers of its own`,
    };
  }
  /** Runs one workload's timed part, under the profiler when asked (the profile covers exactly that part). */
  const timed: Timed = async (workload, work) => {
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
  const log = new StartLog(job.n);
  try {
    if (workloads.includes("enqueue") || workloads.includes("drain")) {
      let added = 0;
      const t0 = performance.now();
      await timed("enqueue", () =>
        withProgress(
          `${name} enqueue`,
          job.n,
          () => added,
          () =>
            addInBatches(
              job,
              (count) => system.enqueueBatch(count),
              (done) => (added = done),
            ),
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      result.enqueue = { seconds, perSecond: job.n / seconds };
      progressLine(
        `${name} enqueue ${job.n}/${job.n} in ${seconds.toFixed(2)} s → ${fmtRate(result.enqueue.perSecond)}/s`,
      );
      if (!workloads.includes("enqueue")) delete result.enqueue;
    }

    const drain = workloads.find((w): w is DrainWorkload => w === "drain" || isDrainVariant(w));
    if (drain !== undefined) {
      const figures = await measureDrain(system, job, drain, log, timed);
      if (drain === "drain") result.drain = figures;
      else result.drainVariants = { [drain]: figures };
      if (log.seen.size !== job.n) throw new Error(`${drain} ran ${log.seen.size} distinct tasks, expected ${job.n}`);
    } else if (system.startWorkers !== undefined && workloads.includes("latency")) {
      await system.startWorkers(log.started);
    }

    if (workloads.includes("latency")) {
      await sleep(250); // let the worker go idle: waiting for a wake-up, not finishing the drain's tail
      const t0 = performance.now();
      await timed("latency", () =>
        withProgress(
          `${name} latency`,
          job.latencyCount,
          () => log.latencies.length,
          async () => {
            for (let i = 0; i < job.latencyCount; i++) {
              const added = epochMs();
              await system.addOne!(added);
              // A raw store has no worker: its figure is the insert's own round trip, the floor under add→start.
              if (system.info.kind === "raw") log.latencies.push(epochMs() - added);
              const next = t0 + (i + 1) * job.latencyIntervalMs;
              const wait = next - performance.now();
              if (wait > 0) await sleep(wait);
            }
            await until(
              () => log.latencies.length >= job.latencyCount,
              1,
              30_000,
              () => `${log.latencies.length}/${job.latencyCount} latency tasks started`,
            );
          },
        ),
      );
      result.latency = percentiles(log.latencies);
      progressLine(`${name} latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`);
    }
    if (log.calls !== log.seen.size) progressLine(`${name}: ${log.calls - log.seen.size} tasks ran more than once`);
  } catch (error) {
    result.status = "failed";
    result.reason = reasonOf(error);
  } finally {
    await system.teardown();
  }
  return result;
}

/** Adds N tasks in batches of `batch`, one call after another. */
export async function addInBatches(
  job: ChildJob,
  add: (count: number) => Promise<void>,
  added: (done: number) => void = () => {},
): Promise<void> {
  let done = 0;
  while (done < job.n) {
    const count = Math.min(job.batch, job.n - done);
    await add(count);
    done += count;
    added(done);
  }
}

/**
 * How a drain workload gets its N tasks to running workers: `before` runs off the clock, `start` is the first
 * thing on it. Workers started on an empty store run idle for `idleMs` first, so that the clock times a running
 * node taking new work, not its start-up.
 */
function drainPath(
  system: BenchSystem,
  job: ChildJob,
  workload: DrainWorkload,
  log: StartLog,
): { before: () => Promise<void>; start: () => Promise<void> } {
  const startIdle = async () => {
    await system.startWorkers!(log.started);
    await sleep(job.idleMs);
  };
  switch (workload) {
    case "drain":
      return { before: async () => {}, start: () => system.startWorkers!(log.started) };
    case "drain-producer":
      return {
        before: async () => {
          await system.startProducer!();
          await startIdle();
        },
        start: () => addInBatches(job, (count) => system.enqueueBatchFromProducer!(count)),
      };
    case "drain-self":
      return { before: startIdle, start: () => addInBatches(job, (count) => system.enqueueBatchFromWorker!(count)) };
    case "drain-resume":
      return {
        before: async () => {
          await startIdle();
          await system.pauseQueue!();
          await addInBatches(job, (count) => system.enqueueBatch(count));
          await sleep(PAUSED_CHECK_MS);
          // A pause that let tasks through would leave the resume less (or nothing) to release.
          if (log.calls > 0) throw new Error(`${log.calls} tasks started while the queue was paused`);
        },
        start: () => system.resumeQueue!(),
      };
  }
}

/**
 * One drain workload: the clock runs from its first call until the store itself says N are completed (a
 * handler counter only says when to start asking, so completions still buffered in memory do not count).
 */
async function measureDrain(
  system: BenchSystem,
  job: ChildJob,
  workload: DrainWorkload,
  log: StartLog,
  timed: Timed,
): Promise<DrainFigures> {
  const { name } = system.info;
  // Generous bounds: a system that is merely slow still finishes; one that hangs is reported, not waited on forever.
  const timeoutMs = 30_000 + job.n * 5;
  const path = system.drainLoop === undefined ? drainPath(system, job, workload, log) : null;
  await path?.before();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const t0 = performance.now();
  if (path === null) {
    let done = 0;
    const completed = await timed(workload, () =>
      withProgress(
        `${name} ${workload}`,
        job.n,
        () => done,
        () => system.drainLoop!((d) => (done = d)),
      ),
    );
    if (completed !== job.n) throw new Error(`the claim loop completed ${completed} rows, expected ${job.n}`);
    log.calls = completed;
    for (let i = 0; i < completed; i++) log.seen.add(i);
  } else {
    await timed(workload, () =>
      withProgress(
        `${name} ${workload}`,
        job.n,
        () => log.calls,
        async () => {
          await path.start();
          await withTimeout(log.allStarted, timeoutMs, () => `${log.seen.size}/${job.n} tasks started`);
          let inStore = 0;
          const completed = async () => (inStore = await system.completedInStore!()) >= job.n;
          const drained =
            system.drainedInStore === undefined
              ? completed
              : async () => (await system.drainedInStore!()) && (await completed());
          await until(drained, 5, timeoutMs, () => `the store says ${inStore}/${job.n} completed`);
        },
      ),
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  await sleep(25); // the monitor records a delay when its timer finally runs: give it the chance
  loopDelay.disable();
  const maxTimerDelayMs = Math.round(loopDelay.max / 1e6);
  const figures = {
    seconds,
    perSecond: job.n / seconds,
    duplicates: log.calls - log.seen.size,
    distinct: log.seen.size,
    maxTimerDelayMs,
  };
  progressLine(
    `${name} ${workload} ${job.n}/${job.n} in ${seconds.toFixed(2)} s → ${fmtRate(figures.perSecond)}/s (longest timer delay ${maxTimerDelayMs} ms)`,
  );
  return figures;
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
