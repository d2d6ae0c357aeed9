/**
 * The HTTP API: one `request` that adds the session's token, turns error bodies (`{error: {code, message}}`) into
 * ApiErrors, and tells the auth state when the server asks for a token (401) or refuses a read-only one (403).
 */
import { apiUrl } from "./env.ts";
import type {
  BulkAction,
  BulkFilter,
  BulkResult,
  Cluster,
  QueueStats,
  Schedule,
  ScheduleInput,
  Stats,
  Task,
  TaskEvent,
  TaskPage,
  TaskState,
  ThisNode,
  WhoAmI,
} from "./types.ts";
import type { Position } from "./types.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const TOKEN_KEY = "conveyor.token";
type AuthListener = (event: "unauthorized" | "forbidden") => void;
const authListeners = new Set<AuthListener>();

export const session = {
  get token(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set token(value: string | null) {
    try {
      if (value === null || value === "") sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // storage disabled: the token lives as long as the page
    }
  },
  onAuthProblem(listener: AuthListener): () => void {
    authListeners.add(listener);
    return () => authListeners.delete(listener);
  },
};

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const token = session.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (signal !== undefined) init.signal = signal;
  const response = await fetch(apiUrl(path), init);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
    const failure = new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? text);
    if (response.status === 401) for (const listener of authListeners) listener("unauthorized");
    if (response.status === 403 && failure.code !== "fault_injection_disabled")
      for (const listener of authListeners) listener("forbidden");
    throw failure;
  }
  return json as T;
}

export type TaskFilter = {
  queue?: string | undefined;
  state?: TaskState[] | undefined;
  type?: string | undefined;
  key?: string | undefined;
  createdAfter?: string | undefined;
  createdBefore?: string | undefined;
};

function query(params: Record<string, string | number | string[] | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length > 0) search.set(name, value.join(","));
    } else search.set(name, String(value));
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

export const api = {
  whoami: () => request<WhoAmI>("GET", "whoami"),
  node: () => request<ThisNode>("GET", "node"),
  nodes: () => request<Cluster>("GET", "nodes"),
  queues: () => request<{ queues: QueueStats[]; position: Position }>("GET", "queues"),
  pause: (queue: string) => request<{ queue: QueueStats }>("POST", `queues/${encodeURIComponent(queue)}/pause`),
  resume: (queue: string) => request<{ queue: QueueStats }>("POST", `queues/${encodeURIComponent(queue)}/resume`),
  setConcurrency: (queue: string, concurrency: number | null) =>
    request<{ queue: QueueStats }>("PUT", `queues/${encodeURIComponent(queue)}/concurrency`, { concurrency }),
  tasks: (filter: TaskFilter, after: number | undefined, limit: number, signal?: AbortSignal) =>
    request<TaskPage>("GET", `tasks${query({ ...filter, after, limit })}`, undefined, signal),
  task: (id: number) => request<{ task: Task; position: Position }>("GET", `tasks/${id}`),
  taskEvents: (id: number) => request<{ events: TaskEvent[] }>("GET", `tasks/${id}/events?limit=1000`),
  enqueue: (input: { type: string; data?: unknown; queue?: string; priority?: number; maxAttempts?: number }) =>
    request<{ task: Task }>("POST", "tasks", input),
  cancel: (id: number) => request<{ task: Task }>("DELETE", `tasks/${id}`),
  rerun: (id: number) => request<{ task: Task }>("POST", `tasks/${id}/rerun`),
  bulkByIds: (action: BulkAction, ids: number[]) => request<BulkResult>("POST", "tasks/actions", { action, ids }),
  bulkByFilter: (action: BulkAction, filter: BulkFilter) =>
    request<{ task: Task }>("POST", "tasks/actions", { action, filter }),
  schedules: () => request<{ schedules: Schedule[] }>("GET", "schedules"),
  putSchedule: (name: string, input: ScheduleInput) =>
    request<{ schedule: Schedule }>("PUT", `schedules/${encodeURIComponent(name)}`, input),
  deleteSchedule: (name: string) => request<void>("DELETE", `schedules/${encodeURIComponent(name)}`),
  stats: (windowSeconds: number) => request<Stats>("GET", `stats?window=${windowSeconds}`),
  fault: (body: { kind: "crash-service"; service: string } | { kind: "fail-next"; type: string; count: number }) =>
    request<unknown>("POST", "faults", body),
};
