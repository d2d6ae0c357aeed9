/**
 * What a task event says about its task, and what its progress reports say about its speed.
 *
 * Rows are snapshots taken at a position of the log; an event applies to a row only when its offset is after the
 * row's (`Live.at`), so a replayed event never takes a row back in time.
 */
import type { LiveEvent } from "./live.tsx";
import type { Task, TaskState } from "./types.ts";

export type LiveTask = Task & {
  /** The log position (offset) this row's data is as of. */
  at: number;
  /** The row left the store (task.deleted). */
  deleted?: boolean;
};

/** The task after `event`, or the same object when the event says nothing new about it. */
export function applyEvent(task: LiveTask, event: LiveEvent): LiveTask {
  if (event.offset <= task.at) return task;
  const data = (event.data ?? {}) as Record<string, unknown>;
  const next: LiveTask = { ...task, at: event.offset };
  const state = (s: TaskState) => {
    next.state = s;
  };
  switch (event.name) {
    case "task.promoted":
      state("queued");
      break;
    case "task.started":
      state("running");
      if (typeof data.attempt === "number") next.attempt = data.attempt;
      if (typeof data.node === "string") next.node = data.node;
      next.startedAt = event.at;
      next.progress = null;
      break;
    case "task.progress":
      if (typeof data.percent === "number") next.progress = { percent: data.percent, info: data.info };
      break;
    case "task.completed":
      state("completed");
      next.finishedAt = event.at;
      if (next.progress !== null) next.progress = { ...next.progress, percent: 100 };
      break;
    case "task.failed":
      state("failed");
      next.finishedAt = event.at;
      if (typeof data.error === "string") next.error = { message: data.error, attempt: next.attempt, at: event.at };
      break;
    case "task.retrying":
      state("scheduled");
      if (typeof data.runAt === "string") next.runAt = data.runAt;
      if (typeof data.error === "string") next.error = { message: data.error, attempt: next.attempt, at: event.at };
      break;
    case "task.cancelled":
      state("cancelled");
      next.finishedAt = event.at;
      if (typeof data.reason === "string") next.error = { name: "CancelledError", message: data.reason, at: event.at };
      break;
    case "task.rerun":
      state("queued");
      next.attempt = 0;
      next.finishedAt = null;
      next.progress = null;
      break;
    case "task.rescued":
      state("queued");
      break;
    case "task.deleted":
      next.deleted = true;
      break;
    default:
      return task;
  }
  return next;
}

export const ENDED = new Set(["task.completed", "task.failed", "task.cancelled", "task.deleted"]);

// ---- progress rate and ETA ------------------------------------------------------------------------------------

type Sample = { t: number; p: number };
const samples = new Map<number, Sample[]>();
const WINDOW_MS = 20_000;

/** Records a progress report (its time is the server's, so that rates do not depend on delivery). */
export function recordProgress(event: LiveEvent): void {
  if (event.name === "task.started" || event.name === "task.rerun") {
    samples.delete(event.taskId ?? -1);
    return;
  }
  if (event.name !== "task.progress" || event.taskId === undefined) return;
  const percent = (event.data as { percent?: unknown } | null)?.percent;
  if (typeof percent !== "number") return;
  const t = Date.parse(event.at);
  let list = samples.get(event.taskId);
  if (list === undefined) {
    if (samples.size > 5000) samples.delete(samples.keys().next().value!);
    list = [];
    samples.set(event.taskId, list);
  }
  // A percent that went down is a new phase: start measuring afresh.
  const last = list[list.length - 1];
  if (last !== undefined && percent < last.p) list.length = 0;
  list.push({ t, p: percent });
  while (list.length > 2 && list[0]!.t < t - WINDOW_MS) list.shift();
  if (list.length > 40) list.shift();
}

/** Percent per second over the recent reports, and the time left at that rate; null until two reports. */
export function progressRate(id: number, percent: number): { rate: number; eta: number } | null {
  const list = samples.get(id);
  if (list === undefined || list.length < 2) return null;
  const first = list[0]!;
  const last = list[list.length - 1]!;
  const seconds = (last.t - first.t) / 1000;
  if (seconds <= 0 || last.p <= first.p) return null;
  const rate = (last.p - first.p) / seconds;
  return { rate, eta: ((100 - percent) / rate) * 1000 };
}
