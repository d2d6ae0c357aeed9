/**
 * The supervision tree of a started node:
 *
 *   services   heartbeat, queue-settings, membership, stats, scheduler (delayed tasks), event-feed, leader-elector
 *     └ leader (only while this node holds the lease): rescuer, cron, pruner, singletons
 *   queues     one worker per queue this node has handlers for
 *
 * Queue workers sit under their own supervisor so that shutdown can stop claiming first while the
 * heartbeat goes on (a node that finishes its tasks must not look dead meanwhile).
 */
import type { Logger } from "pino";
import type { Bus } from "../bus/bus.ts";
import type { Json, Task } from "../core/task.ts";
import type { NodeRecord, Store } from "../store/store.ts";
import type { CompletionBuffer } from "./completion-buffer.ts";
import { CronScheduler } from "./cron-scheduler.ts";
import type { Definitions } from "./definitions.ts";
import type { EventFeed } from "./event-feed.ts";
import type { Log } from "./handler.ts";
import type { FaultPlan } from "./faults.ts";
import { Fence } from "./fence.ts";
import { Heartbeat } from "./heartbeat.ts";
import { LeaderElector } from "./leader.ts";
import { MembershipWatcher } from "./membership.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";
import type { ResolvedOptions } from "./options.ts";
import { OutcomeRecorder } from "./outcomes.ts";
import type { ProgressWriter } from "./progress-writer.ts";
import { Pruner } from "./pruner.ts";
import { QueueSettings } from "./queue-settings.ts";
import { QueueWorker } from "./queue-worker.ts";
import { Rescuer } from "./rescuer.ts";
import { Scheduler } from "./scheduler.ts";
import { SingletonKeeper } from "./singleton-keeper.ts";
import { StatsRecorder } from "./stats-recorder.ts";
import { Supervisor, type SupervisorEvent } from "./supervisor.ts";
import { WorkerPool } from "./worker-pool.ts";

/**
 * Restart budgets generous enough to ride out a store restart of tens of seconds: restarts back off up to
 * 5 s, and only more than 20 in a minute make a supervisor give up.
 */
const BUDGET = { maxRestarts: 20, periodMs: 60_000 };

/** What the services are built from: the node's shared parts, made by Conveyor before it starts. */
export type NodeServicesDeps = {
  store: Store;
  bus: Bus;
  notifier: Notifier;
  events: NodeEvents;
  node: Omit<NodeRecord, "heartbeatAt" | "info">;
  options: ResolvedOptions;
  definitions: Definitions;
  completions: CompletionBuffer;
  progress: ProgressWriter;
  feed: EventFeed;
  faults: FaultPlan;
  logger: Logger;
  info: () => Json;
};

export type NodeServices = {
  heartbeat: Heartbeat;
  /** Null on a one-host store, where a node does not fence. */
  fence: Fence | null;
  queueSettings: QueueSettings;
  leader: LeaderElector;
  pool: WorkerPool;
  services: Supervisor;
  queues: Supervisor;
};

/** The rescuer's period: a quarter of a heartbeat interval (125 ms at the default 500 ms), at least 10 ms. */
export function rescuePassMs(heartbeatIntervalMs: number): number {
  return Math.max(10, Math.floor(heartbeatIntervalMs / 4));
}

export function buildNodeServices(deps: NodeServicesDeps): NodeServices {
  const { store, bus, notifier, events, options: opts, definitions, logger } = deps;
  const log = logOf(logger);
  const onEvent = supervisorEvents(events);
  const deadAfterMs = opts.heartbeatIntervalMs * opts.deadAfterBeats;
  const timing = { intervalMs: opts.heartbeatIntervalMs, deadAfterMs };
  const defaults = (type: string) => definitions.defaultsFor(type);
  const leaderServices = () =>
    new Supervisor({ name: "leader", onEvent, ...BUDGET }, [
      new Rescuer(
        store,
        notifier,
        {
          node: deps.node.id,
          canJudge: () => heartbeat.trustworthy,
          // A pass is one cheap statement on the leader alone; a quarter interval keeps it a small part of failover.
          intervalMs: rescuePassMs(opts.heartbeatIntervalMs),
          deadAfterMs,
          maxStalls: opts.maxStalls,
        },
        events,
      ),
      new CronScheduler(store, notifier, { pollIntervalMs: opts.pollIntervalMs, defaults }, log),
      new Pruner(store, {
        intervalMs: opts.pruneIntervalMs,
        taskRetentionMs: opts.taskRetentionMs,
        eventRetentionMs: opts.eventRetentionMs,
      }),
      new SingletonKeeper(store, notifier, {
        types: definitions
          .all()
          .filter((d) => d.singleton)
          .map((d) => d.type),
        defaults,
        intervalMs: opts.heartbeatIntervalMs,
      }),
    ]);
  const leaderOptions = { node: deps.node.id, intervalMs: opts.heartbeatIntervalMs, ttlMs: deadAfterMs };
  const leader = new LeaderElector(store, leaderOptions, leaderServices, events);
  const outcomes = new OutcomeRecorder({
    store,
    definitions,
    completions: deps.completions,
    progress: deps.progress,
    notifier,
    events,
    logger: log,
  });
  const workers = [...definitions.byQueue()].map(
    ([queue, types]) =>
      new QueueWorker(
        {
          store,
          bus,
          notifier,
          events,
          outcomes,
          faults: deps.faults,
          nodeId: deps.node.id,
          definitions,
          progress: deps.progress,
          logger: log,
          taskLogger: (task: Task) => logOf(logger.child({ taskId: task.id, type: task.type, attempt: task.attempt })),
        },
        {
          queue,
          types,
          concurrency: opts.queues[queue]?.concurrency ?? opts.concurrency,
          batchSize: opts.batchSize,
          pollIntervalMs: opts.pollIntervalMs,
        },
      ),
  );
  const pool = new WorkerPool(store, deps.node.id, workers, opts.maxStalls);
  // On one host (SQLite) no node can be cut off from the store alone: every process waits on the same file, and a
  // rescuer whose own beats stalled does not judge. Fencing there would only turn a long lock into stopped tasks.
  const fence = store.capabilities.multiHost
    ? new Fence(pool, events, {
        node: deps.node.id,
        deadAfterMs,
        marginMs: opts.fenceMarginMs,
        // Handed back tasks are of this node's queues: ring them all, for the other nodes to look.
        onReleased: () =>
          notifier.queuesReady(
            workers.map((worker) => worker.options.queue),
            { logged: true },
          ),
      })
    : null;
  const heartbeat = new Heartbeat(store, deps.node, { ...timing, fence, logger: log }, deps.info);
  const queueSettings = new QueueSettings(store, pool, opts.heartbeatIntervalMs);
  return {
    heartbeat,
    fence,
    queueSettings,
    leader,
    pool,
    services: new Supervisor({ name: "services", onEvent, ...BUDGET }, [
      heartbeat,
      queueSettings,
      new MembershipWatcher(store, events, timing),
      new StatsRecorder(store, notifier, events, deps.node.id),
      new Scheduler(store, bus, notifier, opts.pollIntervalMs),
      deps.feed,
      leader,
    ]),
    queues: new Supervisor({ name: "queues", onEvent, ...BUDGET }, workers),
  };
}

/** A supervisor's crashes, restarts and give-ups, as node events. */
function supervisorEvents(events: NodeEvents): (event: SupervisorEvent) => void {
  return ({ type, supervisor, service, error }) => {
    if (type === "crashed") events.emit("service:crashed", { supervisor, service: service ?? supervisor, error });
    else if (type === "restarted") events.emit("service:restarted", { supervisor, service: service ?? supervisor });
    else if (type === "giveup") events.emit("service:gave-up", { supervisor, service: service ?? null, error });
  };
}

/** Adapts pino's (fields, msg) order to the (msg, fields) order handlers and services use. */
export function logOf(logger: Logger): Log {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
  };
}
