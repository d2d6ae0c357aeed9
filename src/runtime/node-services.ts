/**
 * The supervision tree of a node:
 *
 *   services   heartbeat, scheduler (delayed tasks), event-feed, leader-elector
 *     └ leader (only while this node holds the lease): rescuer, cron, pruner, singletons
 *   queues     one worker per queue this node has handlers for
 *
 * Queue workers sit under their own supervisor so that shutdown can stop claiming first while the
 * heartbeat goes on (a node that finishes its tasks must not look dead meanwhile).
 */
import type { Logger } from "pino";
import type { Bus } from "../bus/bus.ts";
import type { Task } from "../core/task.ts";
import type { NodeRecord, Store } from "../store/store.ts";
import type { CompletionBuffer } from "./completion-buffer.ts";
import { CronScheduler } from "./cron-scheduler.ts";
import type { Definitions } from "./definitions.ts";
import type { EventFeed } from "./event-feed.ts";
import type { TaskLogger } from "./handler.ts";
import { Heartbeat } from "./heartbeat.ts";
import { LeaderElector } from "./leader.ts";
import type { ResolvedOptions } from "./options.ts";
import type { ProgressWriter } from "./progress-writer.ts";
import { Pruner } from "./pruner.ts";
import { QueueWorker } from "./queue-worker.ts";
import { Rescuer } from "./rescuer.ts";
import { Scheduler } from "./scheduler.ts";
import { SingletonKeeper } from "./singleton-keeper.ts";
import { Supervisor, type SupervisorEvent } from "./supervisor.ts";
import type { Json } from "../core/task.ts";

/**
 * Restart budgets generous enough to ride out a store restart of tens of seconds: restarts back off up to
 * 5 s, and only more than 20 in a minute make a supervisor give up.
 */
const BUDGET = { maxRestarts: 20, periodMs: 60_000 };

export type NodeParts = {
  store: Store;
  bus: Bus;
  node: Omit<NodeRecord, "heartbeatAt" | "info">;
  options: ResolvedOptions;
  definitions: Definitions;
  completions: CompletionBuffer;
  progress: ProgressWriter;
  events: EventFeed;
  logger: Logger;
  taskLogger: (logger: Logger) => TaskLogger;
  info: () => Json;
};

export type NodeServices = {
  heartbeat: Heartbeat;
  leader: LeaderElector;
  workers: QueueWorker[];
  services: Supervisor;
  queues: Supervisor;
};

export function buildNodeServices(parts: NodeParts): NodeServices {
  const { store, bus, options: opts, definitions, logger } = parts;
  const log = parts.taskLogger(logger);
  const onEvent = supervisorLogger(logger);
  const deadAfterMs = opts.heartbeatIntervalMs * opts.deadAfterBeats;
  const heartbeat = new Heartbeat(store, parts.node, { intervalMs: opts.heartbeatIntervalMs, deadAfterMs }, parts.info);
  const defaults = (type: string) => definitions.defaultsFor(type);
  const leaderServices = () =>
    new Supervisor({ name: "leader", onEvent, ...BUDGET }, [
      new Rescuer(
        store,
        bus,
        {
          node: parts.node.id,
          canJudge: () => heartbeat.trustworthy,
          intervalMs: opts.heartbeatIntervalMs,
          deadAfterMs,
          maxStalls: opts.maxStalls,
        },
        log,
      ),
      new CronScheduler(store, bus, { pollIntervalMs: opts.pollIntervalMs, defaults }, log),
      new Pruner(store, {
        intervalMs: opts.pruneIntervalMs,
        taskRetentionMs: opts.taskRetentionMs,
        eventRetentionMs: opts.eventRetentionMs,
      }),
      new SingletonKeeper(store, bus, {
        types: definitions
          .all()
          .filter((d) => d.singleton)
          .map((d) => d.type),
        defaults,
        intervalMs: opts.heartbeatIntervalMs,
      }),
    ]);
  const leader = new LeaderElector(
    store,
    { node: parts.node.id, intervalMs: opts.heartbeatIntervalMs, ttlMs: deadAfterMs },
    leaderServices,
    log,
  );
  const workers = [...definitions.byQueue()].map(
    ([queue, types]) =>
      new QueueWorker(
        {
          store,
          bus,
          nodeId: parts.node.id,
          definitions,
          completions: parts.completions,
          progress: parts.progress,
          logger: log,
          taskLogger: (task: Task) =>
            parts.taskLogger(logger.child({ taskId: task.id, type: task.type, attempt: task.attempt })),
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
  return {
    heartbeat,
    leader,
    workers,
    services: new Supervisor({ name: "services", onEvent, ...BUDGET }, [
      heartbeat,
      new Scheduler(store, bus, opts.pollIntervalMs),
      parts.events,
      leader,
    ]),
    queues: new Supervisor({ name: "queues", onEvent, ...BUDGET }, workers),
  };
}

function supervisorLogger(logger: Logger): (event: SupervisorEvent) => void {
  return (event) => {
    const fields = { supervisor: event.supervisor, service: event.service, err: event.error };
    if (event.type === "crashed" || event.type === "giveup") logger.error(fields, `service ${event.type}`);
    else logger.debug(fields, `service ${event.type}`);
  };
}
