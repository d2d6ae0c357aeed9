/**
 * What the harness needs from each benchmarked system, and what a run of one system reports. A system is
 * a runtime (Conveyor, a peer) driven through its public API, or a store's raw claim loop (the physical
 * limit), which has no handler: its latency figure is one single-row insert's round trip (the floor).
 */

export type SystemKind = "conveyor" | "peer" | "raw";
export type StoreName = "sqlite" | "postgres" | "redis";

/**
 * The drain along each path by which tasks reach running workers: added before they start (`drain`), by a
 * separate producer while they run, by the very instance that runs them, or held by a paused queue and
 * released by its resume. Each path has its own code in a runtime (a wake-up, a reservation, a poll), so each
 * is measured: a path that slows down shows in its own column.
 */
export type DrainVariant = "drain-producer" | "drain-self" | "drain-resume";
export const DRAIN_VARIANTS: readonly DrainVariant[] = ["drain-producer", "drain-self", "drain-resume"];
export type DrainWorkload = "drain" | DrainVariant;
export const DRAIN_WORKLOADS: readonly DrainWorkload[] = ["drain", ...DRAIN_VARIANTS];
export type Workload = "enqueue" | DrainWorkload | "latency";
export const WORKLOADS: readonly Workload[] = ["enqueue", ...DRAIN_WORKLOADS, "latency"];

export function isDrainVariant(workload: Workload): workload is DrainVariant {
  return (DRAIN_VARIANTS as readonly Workload[]).includes(workload);
}

export type SystemInfo = {
  name: string;
  kind: SystemKind;
  store: StoreName;
  /** The settings it runs with, in words (and why, for a peer: what its docs recommend for throughput). */
  settings: string;
  /** How drain-producer, drain-self and drain-resume add and release tasks on it, in words (runtimes only). */
  drainPaths?: string;
  /** Package versions, e.g. { bullmq: "6.7.0" }. */
  versions?: Record<string, string>;
};

/** Called by a system's task handler for every task it starts. `t0` is the add time a latency task carries. */
export type TaskStarted = (id: string | number, t0?: number) => void;

export interface BenchSystem {
  readonly info: SystemInfo;
  /** Make a fresh store (schema, database, file) and everything needed to enqueue. A throw means "unavailable". */
  setup(): Promise<void>;
  /** Add `count` no-op tasks in one call of the system's bulk API (also how drain-resume adds to the paused queue). */
  enqueueBatch(count: number): Promise<void>;
  /** Runtimes: start processing at concurrency 50, calling `started` in each handler. */
  startWorkers?(started: TaskStarted): Promise<void>;
  /**
   * drain-producer: open a second client or instance on the same store, with connections of its own, that only
   * adds (it never works tasks); closed by teardown.
   */
  startProducer?(): Promise<void>;
  /** drain-producer: add `count` tasks in one bulk call through that producer. */
  enqueueBatchFromProducer?(count: number): Promise<void>;
  /** drain-self: add `count` tasks in one bulk call through the very instance (object, pool) that runs the workers. */
  enqueueBatchFromWorker?(count: number): Promise<void>;
  /** drain-resume: pause the workers' queue so that tasks added meanwhile wait in it (none started, none lost). */
  pauseQueue?(): Promise<void>;
  /** drain-resume: resume it. */
  resumeQueue?(): Promise<void>;
  /** Runtimes: how many benchmark tasks the store records as completed (the drain ends when it says N). */
  completedInStore?(): Promise<number>;
  /**
   * Runtimes, optional: a cheap "nothing left queued or running" check, polled instead of the count when the
   * count is costly and would slow the system it measures (an in-process store answers on the same thread);
   * the count is still asked once at the end to confirm.
   */
  drainedInStore?(): Promise<boolean>;
  /** Raw loops: claim and complete everything that is queued; report progress; return rows completed. */
  drainLoop?(progress: (done: number) => void): Promise<number>;
  /**
   * Runtimes: add one task carrying its add time `t0` (epoch ms, sub-ms precision) to an idle worker. Raw loops:
   * insert one row in its own transaction; the harness times the call itself.
   */
  addOne?(t0: number): Promise<void>;
  /** Stop workers, close connections, drop the schema or delete the file. Must not throw. */
  teardown(): Promise<void>;
}

export type DrainFigures = {
  seconds: number;
  perSecond: number;
  duplicates: number;
  distinct: number;
  /** The longest the event loop went without running timers during the drain (heartbeats are timers). */
  maxTimerDelayMs: number;
};

export type LatencyFigures = { count: number; p50: number; p90: number; p99: number; mean: number; max: number };

export type SystemResult = {
  info: SystemInfo;
  /** ok: every workload ran; unavailable: could not be set up (not installed, not reachable); failed: broke mid-run. */
  status: "ok" | "unavailable" | "failed";
  reason?: string;
  n: number;
  enqueue?: { seconds: number; perSecond: number };
  drain?: DrainFigures;
  /** The other drain paths, each measured in a process of its own on a fresh store. */
  drainVariants?: Partial<Record<DrainVariant, DrainFigures>>;
  /** Workloads asked for that the system has no path for (shown as "—", never a failure). */
  notApplicable?: Workload[];
  latency?: LatencyFigures;
  /** CPU seconds of the system's own processes (all threads), setup to teardown. */
  cpuSeconds?: number;
  /**
   * CPU seconds the rest of the machine used (not this system, PostgreSQL or Redis) while the system's noisiest
   * process ran (each is retried on its own with --retry-noisy); null off Linux.
   */
  otherCpuSeconds?: number | null;
  /** CPU seconds PostgreSQL and Redis used meanwhile (for this system, unless others used them too). */
  serverCpuSeconds?: number | null;
  /** Wall seconds of the system's child processes, together. */
  wallSeconds?: number;
  /** How many times the system was run (a noisy attempt is run again with --retry-noisy; the quietest is kept). */
  attempts?: number;
  /** With --rounds: every round's figures, of which the ones above are the medians. */
  rounds?: {
    count: number;
    enqueue: number[];
    drain: number[];
    p50: number[];
    drainVariants?: Partial<Record<DrainVariant, number[]>>;
  };
  /** .cpuprofile files written, one per workload, when profiling was asked for. */
  profiles?: string[];
};

/** A drain workload's figures in a result, wherever they are kept. */
export function drainFigures(result: SystemResult, workload: DrainWorkload): DrainFigures | undefined {
  return workload === "drain" ? result.drain : result.drainVariants?.[workload];
}

/**
 * What the parent hands a child process: one system, one set of workloads. A drain variant comes alone (it
 * needs an empty store and workers of its own); enqueue, drain and latency share one child, in that order.
 */
export type ChildJob = {
  system: string;
  n: number;
  batch: number;
  latencyCount: number;
  latencyIntervalMs: number;
  concurrency: number;
  /** How long workers started on an empty store (drain-producer, -self, -resume) run idle before tasks come. */
  idleMs: number;
  workloads: Workload[];
  /** Unique per run: schema names, queue names and key prefixes carry it. */
  runId: string;
  /**
   * Join the store another process made for this runId (the scale bench's worker processes 2..K): do not make it
   * fresh in setup(), do not drop it in teardown().
   */
  attach?: boolean;
  /** When set, each workload runs under the CPU profiler and its .cpuprofile is written here. */
  profileDir?: string;
};

export type ChildMessage = { type: "result"; result: SystemResult };
