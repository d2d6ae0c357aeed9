/** The API's shapes (GET /api/openapi.json), as the dashboard reads them. */

export const TASK_STATES = ["scheduled", "queued", "running", "completed", "failed", "cancelled"] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const ACTIVE_STATES: readonly TaskState[] = ["scheduled", "queued", "running"];

export type Position = { epoch: string; offset: number };

export type ErrorRecord = { name?: string; message: string; stack?: string; attempt?: number; at?: string };

export type Progress = { percent: number; info?: unknown } | null;

export type Task = {
  id: number;
  queue: string;
  type: string;
  data: unknown;
  priority: number;
  state: TaskState;
  attempt: number;
  maxAttempts: number;
  stalls: number;
  runAt: string;
  key: string | null;
  progress: Progress;
  result: unknown;
  error: ErrorRecord | null;
  errors: ErrorRecord[];
  timeoutMs: number | null;
  backoffMs: number | null;
  node: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
};

export type TaskPage = { tasks: Task[]; nextCursor: number | null; position: Position };

export type TaskEvent = {
  offset: number;
  type: string;
  taskId: number;
  queue: string;
  data: Record<string, unknown> | null;
  at: string;
};

export type Counts = Record<TaskState, number>;

export type QueueStats = { queue: string; paused: boolean; concurrency?: number | null; counts: Counts };

export type ServiceNode = {
  name: string;
  state: string;
  strategy?: string;
  leader?: boolean;
  restarts?: number;
  lastError?: string | null;
  lastErrorAt?: string | null;
  startedAt?: string | null;
  children?: ServiceNode[];
};

export type NodeRow = {
  id: string;
  name: string;
  host: string;
  pid: number;
  version: string;
  roles: string[];
  startedAt: string;
  heartbeatAt: string;
  heartbeatAgeMs: number;
  alive: boolean;
  leader: boolean;
  info: { tree?: ServiceNode; queues?: { queue: string; concurrency: number; running: number }[] } & Record<
    string,
    unknown
  >;
};

export type Cluster = { leader: string | null; nodes: NodeRow[]; position: Position };

export type ThisNode = {
  id: string;
  name: string;
  version: string;
  state: string;
  driver: string;
  tree: ServiceNode;
  faultInjection?: boolean;
};

export type Schedule = {
  name: string;
  cron: string;
  timezone: string | null;
  type: string;
  data: unknown;
  options: { queue?: string; priority?: number; maxAttempts?: number; timeoutMs?: number | null } & Record<
    string,
    unknown
  >;
  enabled: boolean;
  lastTick: string | null;
  nextRun: string | null;
  createdAt: string;
  updatedAt: string;
};

export type ScheduleInput = {
  cron: string;
  type: string;
  timezone?: string | null;
  data?: unknown;
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number | null;
  enabled?: boolean;
};

export type Percentiles = { p50: number; p95: number; p99: number } | null;

export type StatsBucket = {
  at: string;
  completed: number;
  failed: number;
  retried: number;
  runMs: Percentiles;
  waitMs: Percentiles;
};

export type Stats = { bucketSeconds: number; buckets: StatsBucket[]; position: Position };

/** A `stats.bucket` event's data: one node's 5-second bucket as it closes. */
export type NodeBucket = {
  node: string;
  at: string;
  completed: number;
  failed: number;
  retried: number;
  /** Counts per bucket of STATS_BOUNDS_MS (src/core/stats.ts), the last one open-ended. */
  run: number[];
  wait: number[];
};

export type Scope = "none" | "read" | "write" | "admin";
export type WhoAmI = { scope: Scope; tokens: { read: boolean; write: boolean; admin?: boolean } };

export type BulkAction = "cancel" | "rerun" | "delete";
export type BulkFilter = {
  queue?: string;
  state?: TaskState[];
  type?: string;
  key?: string;
  createdAfter?: string;
  createdBefore?: string;
};
export type BulkResult = { done: number[]; skipped: { id: number; reason: string }[] };
