/**
 * A download, as the seed's struct (`id`, `user_id`, `state`, `file_url`) plus `node`, and where it lives.
 *
 * A download is a Conveyor task of type `download.generate` with the key `download:<user_id>`: the key is unique
 * among active tasks cluster-wide, which is what makes it one download per user, on every node, concurrently too. The
 * task runs from the request until the download disappears (its TTL after `ready`), so the key is held that long.
 *
 * Its states are not in the task but in the event log: every change is a message on the user's application channel
 * `download:<user_id>` (`update`, `progress`, `removed`), and that message is at once the push to the user's pages and
 * the job's checkpoint. One publish is one atomic, durable write, so there is no moment where the push was made and
 * the state not saved, or the reverse: a job that takes over after its node died reads the channel since the request
 * and goes on after the last step pushed, and pushes no step twice. (A task's own `progress` column is no checkpoint:
 * Conveyor clears it when a rescued task starts again.)
 */
import type { Conveyor, Json, LogEvent, Task, TaskListQuery } from "../../src/index.ts";

export const DOWNLOAD_TYPE = "download.generate";
export const DOWNLOAD_QUEUE = "downloads";
/** The application channel every page follows for the cluster view and the new-version notice. */
export const CLUSTER_CHANNEL = "cluster";

export type DownloadState = "pending" | "processing" | "ready" | "error";

export type Download = {
  id: string;
  user_id: string;
  state: DownloadState;
  file_url: string | null;
  /** The node running (or last running) its job. */
  node: string | null;
};

/** Where the log was when the download was requested: its history is after this offset. */
export type LogPosition = { epoch: string; offset: number };

/** The task's data. */
export type JobData = { id: string; user_id: string; requested_at: number; since: LogPosition };

/** The messages on `download:<user_id>`. */
export type DownloadMessage =
  | { type: "update"; download: Download }
  | { type: "progress"; id: string; user_id: string; percent: number; node: string }
  | { type: "removed"; id: string; user_id: string; reason: "expired" | "deleted" };

export function downloadChannel(userId: string): string {
  return `download:${userId}`;
}

export function downloadKey(userId: string): string {
  return `download:${userId}`;
}

export function fileUrl(id: string): string {
  return `/downloads/${id}.pdf`;
}

/** What the log says of one download so far. */
export type History = {
  /** The last state pushed (null: none yet, the download is pending from the start). */
  state: DownloadState | null;
  /** When that state was pushed (epoch ms). */
  stateAt: number;
  /** The last progress pushed within `processing` (0 when none), in tenths: 0, 10 … 90. */
  percent: number;
  /** The node of the latest update or progress. */
  node: string | null;
  /** The latest update, as pushed. */
  last: Download | null;
  /** Its removal was pushed: expired or deleted. */
  removed: boolean;
  /** The offset of the last event read: the history is complete up to there. */
  offset: number;
};

/** Log events read per query. */
const PAGE = 1000;

/**
 * The download's history from the log: every message about it on its user's channel since it was requested. A few
 * seconds of the log for the seed's timings (the cleaner keeps nothing else of a download).
 */
export async function readHistory(conveyor: Conveyor, data: JobData): Promise<History> {
  const channel = downloadChannel(data.user_id);
  const history: History = {
    state: null,
    stateAt: data.requested_at,
    percent: 0,
    node: null,
    last: null,
    removed: false,
    offset: data.since.offset,
  };
  for (;;) {
    const events: LogEvent[] = await conveyor.store.eventList({ after: history.offset, limit: PAGE });
    for (const event of events) {
      if (event.channel === channel && event.type === "message") apply(history, data.id, event);
      history.offset = event.offset;
    }
    if (events.length < PAGE) return history;
  }
}

function apply(history: History, id: string, event: LogEvent): void {
  const message = event.data as DownloadMessage | null;
  if (message === null || typeof message !== "object") return;
  if (message.type === "update" && message.download?.id === id) {
    if (message.download.state !== history.state) history.percent = 0;
    history.state = message.download.state;
    history.stateAt = event.at.getTime();
    history.node = message.download.node;
    history.last = message.download;
  } else if (message.type === "progress" && message.id === id) {
    history.percent = message.percent;
    history.node = message.node;
  } else if (message.type === "removed" && message.id === id) {
    history.removed = true;
  }
}

export type Timings = { ttlMs: number };

/**
 * The first task (newest first) matching `query`, reading page after page: a filtered list may answer a short page
 * and a cursor (Conveyor reads a bounded stretch of the table per call).
 */
export async function firstTask(conveyor: Conveyor, query: TaskListQuery): Promise<Task | null> {
  let after: number | undefined;
  for (;;) {
    const page = await conveyor.list({ ...query, limit: 1, ...(after === undefined ? {} : { after }) });
    if (page.tasks.length > 0) return page.tasks[0]!;
    if (page.nextCursor === null) return null;
    after = page.nextCursor;
  }
}

/** The user's active download task (scheduled, queued or running), if any. By key: an index finds it. */
export function activeTask(conveyor: Conveyor, userId: string): Promise<Task | null> {
  return firstTask(conveyor, { key: downloadKey(userId), states: ["scheduled", "queued", "running"] });
}

/** The user's latest download that failed for good, if any. */
function failedTask(conveyor: Conveyor, userId: string): Promise<Task | null> {
  return firstTask(conveyor, { key: downloadKey(userId), states: ["failed"] });
}

export function jobData(task: Task): JobData {
  return task.data as unknown as JobData;
}

/**
 * The user's download as the user sees it, from the store: null when there is none (never requested, expired,
 * deleted). A failed one shows as `error` for the TTL after it failed.
 */
export async function currentDownload(
  conveyor: Conveyor,
  userId: string,
  timings: Timings,
  now = Date.now(),
): Promise<{ download: Download; task: Task; history: History } | null> {
  const task = await activeTask(conveyor, userId);
  if (task !== null) {
    const data = jobData(task);
    const history = await readHistory(conveyor, data);
    if (history.removed) return null;
    if (history.state === "ready" && history.stateAt + timings.ttlMs <= now) return null;
    const node = (await runningNode(conveyor, task)) ?? history.node;
    const download: Download = {
      id: data.id,
      user_id: data.user_id,
      state: history.state ?? "pending",
      file_url: history.last?.file_url ?? null,
      node,
    };
    return { download, task, history };
  }
  const failed = await failedTask(conveyor, userId);
  if (failed !== null && (failed.finishedAt?.getTime() ?? 0) + timings.ttlMs > now) {
    const data = jobData(failed);
    const history = await readHistory(conveyor, data);
    if (history.removed) return null;
    return {
      download: { id: data.id, user_id: data.user_id, state: "error", file_url: null, node: history.node },
      task: failed,
      history,
    };
  }
  return null;
}

/** The name of the node running the task now, or null when it is not running. */
export async function runningNode(conveyor: Conveyor, task: Task): Promise<string | null> {
  if (task.state !== "running" || task.node === null) return null;
  if (task.node === conveyor.nodeId) return conveyor.nodeName;
  const nodes = await conveyor.nodes();
  return nodes.find((node) => node.id === task.node)?.name ?? null;
}

/** A value of ours (plain JSON by construction) as Conveyor's Json. */
export function asJson(value: object): Json {
  return value as unknown as Json;
}
