/**
 * The example's task types:
 *
 * - `download.generate` (part 3): one per download, from the request until the download disappears. It pushes
 *   `pending` at T + start, `processing` a step later, progress every tenth of the generation, `ready` with the file's
 *   URL, and the removal once the TTL is over. Every push is a message on the user's channel and the job's checkpoint
 *   (download.ts): a job that takes over after a node died resumes after the last step pushed, from the last tenth
 *   of the generation, with the same id, and pushes no step twice. Before each push it checks in the store that its
 *   attempt is still the task's running one, so a job that was stopped or replaced pushes nothing more.
 * - `database.cleaner` (part 2, the seed's DatabaseCleaner): a Conveyor singleton, one instance cluster-wide, moved to
 *   a surviving node when its node dies. Every CLEANER_INTERVAL_MS it logs `deleting outdated records...` and deletes
 *   the finished download tasks nobody can see any more, then logs `<n> records deleted`.
 * - `cluster.observer` (parts 1 and 4, the seed's NodeObserver and Version.Monitor): a singleton that follows the
 *   cluster's own events and pushes the nodes, as Conveyor sees them, to the `cluster` channel every page follows;
 *   when every live node runs one version whose major differs from the last one adopted, it pushes `new_version`.
 *   The version it adopted is its task's result, so the next observer (on any node) starts from it, not from 0.0.0.
 *
 * And on every node, the seed's Observer: `--- Node up: <name>` / `--- Node down: <name>`.
 */
import { type Conveyor, type Json, type TaskContext, UnrecoverableError } from "../../src/index.ts";
import type { DownloadsConfig } from "./config.ts";
import { majorOf } from "./config.ts";
import {
  asJson,
  CLUSTER_CHANNEL,
  DOWNLOAD_QUEUE,
  DOWNLOAD_TYPE,
  type Download,
  type DownloadMessage,
  type DownloadState,
  downloadChannel,
  fileUrl,
  firstTask,
  type JobData,
  readHistory,
} from "./download.ts";

export const CLEANER_TYPE = "database.cleaner";
export const OBSERVER_TYPE = "cluster.observer";
export const SINGLETON_QUEUE = "singletons";

export type Log = (line: string) => void;

/** A job whose attempt is no longer the task's running one (stopped, or taken over after its node was found dead). */
class Superseded extends Error {
  override name = "Superseded";
}

/** Waits `ms` (0 or less: not at all), or rejects when `signal` fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(stopped(signal));
    if (ms <= 0) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      reject(stopped(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function stopped(signal: AbortSignal): Error {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  return new Superseded(`stopped: ${reason}`);
}

export function defineJobs(conveyor: Conveyor, config: DownloadsConfig, log: Log): void {
  conveyor.define(DOWNLOAD_TYPE, (data: JobData, ctx) => generate(conveyor, config, data, ctx), {
    queue: DOWNLOAD_QUEUE,
    maxAttempts: config.attempts,
    backoff: { baseMs: 500, maxMs: 5000 },
    graceMs: 1000,
  });
  conveyor.define(CLEANER_TYPE, (_data, ctx) => clean(conveyor, config, ctx, log), {
    queue: SINGLETON_QUEUE,
    singleton: true,
    maxAttempts: 1000,
    graceMs: 1000,
  });
  conveyor.define(OBSERVER_TYPE, (_data, ctx) => observe(conveyor, ctx, log), {
    queue: SINGLETON_QUEUE,
    singleton: true,
    maxAttempts: 1000,
    graceMs: 1000,
  });
}

// ---- download.generate ---------------------------------------------------------------------------------------------

/** The generation's steps: progress is pushed after each tenth. */
const TENTHS = 10;

async function generate(conveyor: Conveyor, config: DownloadsConfig, data: JobData, ctx: TaskContext): Promise<Json> {
  const channel = downloadChannel(data.user_id);
  const me = conveyor.nodeName;
  const history = await readHistory(conveyor, data);
  if (history.removed) return { expired: true };
  let { state, stateAt, percent } = history;

  /** Checks the attempt is still the running one (and records the step on the task), then pushes. */
  const push = async (message: DownloadMessage, progress: { percent: number; state: DownloadState | "removed" }) => {
    if (ctx.signal.aborted) throw stopped(ctx.signal);
    const current = await conveyor.store.taskProgress({
      id: ctx.id,
      attempt: ctx.attempt,
      progress: { percent: progress.percent, info: { state: progress.state, node: me } },
      now: new Date(),
    });
    if (!current) throw new Superseded(`attempt ${ctx.attempt} of task ${ctx.id} is no longer the running one`);
    await conveyor.publish(channel, asJson(message));
  };
  const update = async (next: DownloadState, url: string | null = null) => {
    const download: Download = { id: data.id, user_id: data.user_id, state: next, file_url: url, node: me };
    await push({ type: "update", download }, { percent: next === "ready" ? 100 : 0, state: next });
    state = next;
    stateAt = Date.now();
    percent = 0;
  };
  const progress = async (tenths: number) => {
    const message = { type: "progress", id: data.id, user_id: data.user_id, percent: tenths, node: me } as const;
    await push(message, { percent: tenths, state: state ?? "pending" });
  };

  try {
    // Taking over (after a node died, a stop, or a failed attempt): say who runs it now, without repeating a step.
    const resumed = state !== null || ctx.attempt > 1;
    if (resumed && (state === null || state === "pending" || state === "processing")) await progress(percent);
    if (state === null) {
      await sleep(data.requested_at + config.startMs - Date.now(), ctx.signal);
      await update("pending");
    }
    if (state === "pending") {
      await sleep(stateAt + config.processMs - Date.now(), ctx.signal);
      await update("processing");
    }
    if (state === "processing") {
      // The tenths already done (pushed) are not done again: the rest takes the rest of the time.
      const origin = Date.now() - (percent / 100) * config.readyMs;
      for (let tenth = percent / 10 + 1; tenth <= TENTHS; tenth++) {
        await sleep(origin + (tenth * config.readyMs) / TENTHS - Date.now(), ctx.signal);
        if (config.failRate > 0 && Math.random() < config.failRate) {
          throw new Error(`generating the file failed at ${tenth * 10}% (DOWNLOAD_FAIL_RATE ${config.failRate})`);
        }
        if (tenth < TENTHS) await progress(tenth * 10);
      }
      await update("ready", fileUrl(data.id));
    }
    if (state === "error") throw new UnrecoverableError("this download failed for good earlier");
    // ready: it stays for the TTL, then disappears (the task ends, and with it the hold on the user's key).
    await sleep(stateAt + config.ttlMs - Date.now(), ctx.signal);
    await push(
      { type: "removed", id: data.id, user_id: data.user_id, reason: "expired" },
      { percent: 100, state: "removed" },
    );
    return { expired: true };
  } catch (error) {
    // The last attempt failed: say so (the seed declared `error` and never set it), then fail for good.
    if (!(error instanceof Superseded) && !(error instanceof UnrecoverableError) && ctx.attempt >= ctx.maxAttempts) {
      await update("error").catch(() => {});
    }
    throw error;
  }
}

// ---- database.cleaner ----------------------------------------------------------------------------------------------

/** The seed's DatabaseCleaner: a loop, every interval, on exactly one node of the cluster. */
async function clean(conveyor: Conveyor, config: DownloadsConfig, ctx: TaskContext, log: Log): Promise<Json> {
  for (;;) {
    await sleep(config.cleanerIntervalMs, ctx.signal);
    log("deleting outdated records...");
    const deleted = await deleteOutdated(conveyor, config);
    log(`${deleted} records deleted`);
  }
}

/**
 * Deletes the finished download tasks nobody sees any more (finished more than the TTL ago: an `error` shows for the
 * TTL), a thousand at most per run. Returns how many.
 */
async function deleteOutdated(conveyor: Conveyor, config: DownloadsConfig): Promise<number> {
  const before = Date.now() - config.ttlMs;
  const ids: number[] = [];
  let after: number | undefined;
  // Oldest first; a filtered list answers a stretch of the table per call, so it is read until its cursor ends.
  while (ids.length < 1000) {
    const page = await conveyor.list({
      type: DOWNLOAD_TYPE,
      states: ["completed", "cancelled", "failed"],
      createdBefore: new Date(before),
      order: "asc",
      limit: 1000 - ids.length,
      ...(after === undefined ? {} : { after }),
    });
    for (const task of page.tasks) if ((task.finishedAt?.getTime() ?? before) < before) ids.push(task.id);
    if (page.nextCursor === null) break;
    after = page.nextCursor;
  }
  if (ids.length === 0) return 0;
  const outcome = await conveyor.bulk("delete", ids);
  return outcome.done.length;
}

// ---- cluster.observer ----------------------------------------------------------------------------------------------

export type ClusterNode = { name: string; version: string; alive: boolean; leader: boolean };
export type ClusterMessage = { type: "cluster"; nodes: ClusterNode[] } | { type: "new_version"; version: string };

/** The nodes as Conveyor sees them, sorted by name. */
export async function clusterNodes(conveyor: Conveyor): Promise<ClusterNode[]> {
  const view = await conveyor.cluster();
  return view.nodes
    .map((node) => ({ name: node.name, version: node.version, alive: node.alive, leader: node.leader }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** How often the observer looks at the cluster besides its events (a node found dead changes `alive`). */
const OBSERVE_MS = 1000;

async function observe(conveyor: Conveyor, ctx: TaskContext, log: Log): Promise<Json> {
  const adopted = await lastAdoptedVersion(conveyor);
  let wake: (() => void) | null = null;
  const subscription = await conveyor.subscribe(["nodes"], {}, () => wake?.());
  let published = "";
  try {
    for (;;) {
      if (ctx.signal.aborted) throw stopped(ctx.signal);
      const nodes = await clusterNodes(conveyor);
      const text = JSON.stringify(nodes);
      if (text !== published) {
        await conveyor.publish(CLUSTER_CHANNEL, { type: "cluster", nodes } as unknown as Json);
        published = text;
      }
      const versions = new Set(nodes.filter((node) => node.alive).map((node) => node.version));
      const [version] = versions;
      if (versions.size === 1 && version !== undefined && majorOf(version) !== null) {
        if (adopted === null) {
          // The first observer of this cluster: what runs now is the baseline (the seed started from 0.0.0 and told
          // every page of a new version on the first node event).
          log(`version observer: the cluster runs ${version}`);
          return { version };
        }
        if (majorOf(version) !== majorOf(adopted)) {
          await conveyor.publish(CLUSTER_CHANNEL, { type: "new_version", version });
          log(`version observer: every node runs ${version} (was ${adopted}): new version announced`);
          return { version };
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, OBSERVE_MS);
        const done = () => {
          clearTimeout(timer);
          ctx.signal.removeEventListener("abort", done);
          resolve();
        };
        wake = done;
        ctx.signal.addEventListener("abort", done, { once: true });
      });
      wake = null;
    }
  } finally {
    subscription.close();
  }
}

/** The version the last observer adopted (its result), or null when none has yet. */
async function lastAdoptedVersion(conveyor: Conveyor): Promise<string | null> {
  // A singleton's tasks carry the key singleton:<type> (README): an index finds the latest.
  const task = await firstTask(conveyor, { key: `singleton:${OBSERVER_TYPE}`, states: ["completed"] });
  const result = task?.result as { version?: unknown } | null | undefined;
  return typeof result?.version === "string" ? result.version : null;
}

// ---- the seed's Observer, on every node ------------------------------------------------------------------------------

/**
 * Logs the cluster's comings and goings as each node sees them, like the seed's Observer (nodeup/nodedown): the
 * other nodes alive at the start, then every change, looked at on each of the cluster's events and every second (a
 * node is found dead by its silence, not by an event). Returns how to stop.
 */
export async function logMembership(conveyor: Conveyor, log: Log): Promise<() => void> {
  const stop = new AbortController();
  let alive: Set<string> | null = null;
  let wake: (() => void) | null = null;
  const look = async () => {
    const now = new Set((await clusterNodes(conveyor)).filter((node) => node.alive).map((node) => node.name));
    now.delete(conveyor.nodeName);
    for (const name of now) if (!alive?.has(name)) log(`--- Node up: ${name}`);
    for (const name of alive ?? []) if (!now.has(name)) log(`--- Node down: ${name}`);
    alive = now;
  };
  await look();
  const subscription = await conveyor.subscribe(["nodes"], {}, () => wake?.());
  void (async () => {
    while (!stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, OBSERVE_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (!stop.signal.aborted) await look().catch(() => {});
    }
  })();
  return () => {
    stop.abort();
    wake?.();
    subscription.close();
  };
}
