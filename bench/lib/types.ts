/**
 * What the harness needs from each benchmarked system, and what a run of one system reports. A system is
 * a runtime (Conveyor, a peer) driven through its public API, or a store's raw claim loop (the physical
 * limit), which has no handler: its latency figure is one single-row insert's round trip (the floor).
 */

export type SystemKind = "conveyor" | "peer" | "raw";
export type StoreName = "sqlite" | "postgres" | "redis";
export type Workload = "enqueue" | "drain" | "latency";
export const WORKLOADS: readonly Workload[] = ["enqueue", "drain", "latency"];

export type SystemInfo = {
  name: string;
  kind: SystemKind;
  store: StoreName;
  /** The settings it runs with, in words (and why, for a peer: what its docs recommend for throughput). */
  settings: string;
  /** Package versions, e.g. { bullmq: "6.7.0" }. */
  versions?: Record<string, string>;
};

/** Called by a system's task handler for every task it starts. `t0` is the add time a latency task carries. */
export type TaskStarted = (id: string | number, t0?: number) => void;

export interface BenchSystem {
  readonly info: SystemInfo;
  /** Make a fresh store (schema, database, file) and everything needed to enqueue. A throw means "unavailable". */
  setup(): Promise<void>;
  /** Add `count` no-op tasks in one call of the system's bulk API. */
  enqueueBatch(count: number): Promise<void>;
  /** Runtimes: start processing at concurrency 50, calling `started` in each handler. */
  startWorkers?(started: TaskStarted): Promise<void>;
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

export type LatencyFigures = { count: number; p50: number; p90: number; p99: number; mean: number; max: number };

export type SystemResult = {
  info: SystemInfo;
  /** ok: every workload ran; unavailable: could not be set up (not installed, not reachable); failed: broke mid-run. */
  status: "ok" | "unavailable" | "failed";
  reason?: string;
  n: number;
  enqueue?: { seconds: number; perSecond: number };
  drain?: {
    seconds: number; perSecond: number; duplicates: number; distinct: number;
    /** The longest the event loop went without running timers during the drain (heartbeats are timers). */
    maxTimerDelayMs: number;
  };
  latency?: LatencyFigures;
  /** CPU seconds of the system's own process (all threads), setup to teardown. */
  cpuSeconds?: number;
  /** CPU seconds the rest of the machine used meanwhile (not this process, PostgreSQL or Redis); null off Linux. */
  otherCpuSeconds?: number | null;
  /** CPU seconds PostgreSQL and Redis used meanwhile (for this system, unless others used them too). */
  serverCpuSeconds?: number | null;
  /** Wall seconds of the whole child process. */
  wallSeconds?: number;
  /** How many times the system was run (a noisy attempt is run again with --retry-noisy; the quietest is kept). */
  attempts?: number;
  /** With --rounds: every round's figures, of which the ones above are the medians. */
  rounds?: { count: number; enqueue: number[]; drain: number[]; p50: number[] };
  /** .cpuprofile files written, one per workload, when profiling was asked for. */
  profiles?: string[];
};

/** What the parent hands a child process: one system, one set of workloads. */
export type ChildJob = {
  system: string;
  n: number;
  batch: number;
  latencyCount: number;
  latencyIntervalMs: number;
  concurrency: number;
  workloads: Workload[];
  /** Unique per run: schema names, queue names and key prefixes carry it. */
  runId: string;
  /** When set, each workload runs under the CPU profiler and its .cpuprofile is written here. */
  profileDir?: string;
};

export type ChildMessage = { type: "result"; result: SystemResult };
