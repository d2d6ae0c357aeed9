/**
 * The node's events in its log: one line per event that an operator wants to read, with the event's name in the
 * `event` field (what the multi-process tests wait on) and a message a person can read.
 */
import type { Logger } from "pino";
import type { NodeEvents } from "./node-events.ts";

const STOPPED = {
  returned: "its handler returned",
  threw: "its handler threw",
  terminated: "its thread was terminated",
  abandoned: "its handler was abandoned",
} as const;

export function logNodeEvents(events: NodeEvents, logger: Logger): void {
  events.on("task:rescued", ({ task, outcome, from }) =>
    logger.warn(
      { event: "task:rescued", taskId: task.id, from, stalls: task.stalls, outcome },
      `task ${task.id} rescued from a dead node: ${outcome}`,
    ),
  );
  events.on("task:stopped", ({ task, reason, how }) =>
    logger.info(
      { event: "task:stopped", taskId: task.id, reason, how },
      `task ${task.id} stopped (${reason}): ${STOPPED[how]}`,
    ),
  );
  events.on("service:crashed", ({ supervisor, service, error }) =>
    logger.error({ event: "service:crashed", supervisor, service, err: error }, "service crashed"),
  );
  events.on("service:restarted", ({ supervisor, service }) =>
    logger.info({ event: "service:restarted", supervisor, service }, "service restarted"),
  );
  events.on("service:gave-up", ({ supervisor, service, error }) =>
    logger.error({ event: "service:gave-up", supervisor, service, err: error }, "service gave up"),
  );
  events.on("leader:gained", ({ node }) =>
    logger.info({ event: "leader:gained", node }, "this node is now the leader"),
  );
  events.on("leader:lost", ({ node }) => logger.info({ event: "leader:lost", node }, "this node no longer leads"));
  events.on("node:joined", ({ node }) =>
    logger.info({ event: "node:joined", node: node.id, name: node.name }, `node ${node.name} joined`),
  );
  events.on("node:left", ({ node, reason }) =>
    logger.info({ event: "node:left", node: node.id, name: node.name, reason }, `node ${node.name} left (${reason})`),
  );
  events.on("node:fenced", ({ silentMs, tasks }) =>
    logger.warn(
      { event: "node:fenced", silentMs, tasks },
      `no heartbeat reached the store for ${silentMs} ms: this node fenced itself off (stopped claiming, stopped ${tasks.length} running tasks)`,
    ),
  );
  events.on("node:unfenced", ({ fencedMs, released }) =>
    logger.info(
      { event: "node:unfenced", fencedMs, released },
      `the store is back: this node claims again after ${fencedMs} ms fenced (${released.length} tasks handed back)`,
    ),
  );
  events.on("bus:connected", ({ reconnect, downMs }) => {
    if (reconnect) logger.info({ event: "bus:connected", downMs }, `bus reconnected after ${downMs} ms`);
  });
  events.on("bus:lost", ({ error }) => logger.warn({ event: "bus:lost", err: error }, "bus connection lost"));
}
