/**
 * The cluster's events in the event log, on the `nodes` channel of the live stream: a node's service crashed,
 * restarted or gave up, it fenced itself off or rejoined (written by that node), leadership changed (by the new
 * leader), a node joined or left (by the leader alone, so that each is written once however many nodes watch the
 * store). Best effort: an event that
 * cannot be written (the store is down) is logged and dropped, since the log it would go to is what is down.
 * A stopped attempt's end on this node (its handler returned or threw after the signal, its thread was terminated
 * or it was abandoned after the grace period) is written here too, as `task.stopped` with the task's id: the last
 * step of a stop's lifecycle, which only the node that ran the attempt knows.
 *
 * Events emitted while an append is under way go out together in the next one: a stop of 10,000 running tasks is
 * a dozen appends, not 10,000 at once (each wanting one of the pool's connections: that flood kept the heartbeat
 * from the store until the node fenced itself, and half the events were lost waiting for a connection).
 */
import { isStoreUnavailable } from "../core/store-unavailable.ts";
import type { ChannelEventType, Json } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import type { Log } from "./handler.ts";
import type { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";

export type ClusterLogDeps = {
  store: Store;
  notifier: Notifier;
  events: NodeEvents;
  nodeId: string;
  isLeader: () => boolean;
  /** Whether the node is stopping: then an append that finds the store unavailable ends the writing. */
  isStopping: () => boolean;
  logger: Log;
};

/** Events per append: one log row each, and a bounded statement. */
const MAX_EVENTS_PER_APPEND = 1000;

type NodesEvent = { type: ChannelEventType; channel: "nodes"; data: Json };

/**
 * Writes the node's cluster events from its events; the function returned stops listening and resolves once every
 * event emitted before has been written or given up on: true if none was given up on during the stop.
 *
 * Once the node is stopping, the first append that finds the store unavailable ends the writing: what is pending
 * and what comes after is dropped (and counted in a warning). A node stopped during an outage must still exit, and
 * each append would wait out the store's timeout: against a frozen PostgreSQL, services crashing on their way down
 * kept the stop writing one 3-second append after another.
 */
export function writeClusterEvents(deps: ClusterLogDeps): () => Promise<boolean> {
  const { events, nodeId, isLeader, isStopping } = deps;
  const pending: NodesEvent[] = [];
  let writing: Promise<void> | null = null;
  let dropped = 0;
  let gaveUp = false;
  // The first event goes out at once (on SQLite, before the code that emitted it goes on); what is emitted while it
  // is being written goes out in the next append.
  const writeAll = async () => {
    while (pending.length > 0) {
      const batch = pending.splice(0, MAX_EVENTS_PER_APPEND);
      if ((await appendEvents(deps, batch)) === "unavailable" && isStopping()) {
        gaveUp = true;
        dropped += pending.length;
        pending.length = 0;
      }
    }
    writing = null;
  };
  const write = (type: ChannelEventType, data: Record<string, Json>) => {
    if (gaveUp) {
      dropped++;
      return;
    }
    pending.push({ type, channel: "nodes", data });
    writing ??= writeAll();
  };
  const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));
  const listeners = {
    "service:crashed": ({ supervisor, service, error }: { supervisor: string; service: string; error: unknown }) =>
      write("service.crashed", { node: nodeId, supervisor, service, error: describe(error) }),
    "service:restarted": ({ supervisor, service }: { supervisor: string; service: string }) =>
      write("service.restarted", { node: nodeId, supervisor, service }),
    "service:gave-up": ({
      supervisor,
      service,
      error,
    }: {
      supervisor: string;
      service: string | null;
      error: unknown;
    }) => write("service.gave-up", { node: nodeId, supervisor, service, error: describe(error) }),
    "leader:gained": ({ node }: { node: string }) => write("leader.changed", { leader: node }),
    "task:stopped": ({ task, reason, how }: { task: { id: number; attempt: number }; reason: string; how: string }) =>
      write("task.stopped", { node: nodeId, taskId: task.id, attempt: task.attempt, reason, how }),
    // Written by the node itself: the fenced one is best effort (the store it lost may not take it), the unfenced
    // one says how long the fence lasted.
    "node:fenced": ({ silentMs, tasks }: { silentMs: number; tasks: number[] }) =>
      write("node.fenced", { node: nodeId, silentMs, tasks }),
    "node:unfenced": ({ fencedMs, released }: { fencedMs: number; released: number[] }) =>
      write("node.unfenced", { node: nodeId, fencedMs, released }),
    "node:joined": ({ node }: { node: { id: string; name: string; host: string; version: string } }) => {
      if (isLeader()) write("node.joined", { node: node.id, name: node.name, host: node.host, version: node.version });
    },
    "node:left": ({ node, reason }: { node: { id: string; name: string }; reason: string }) => {
      if (isLeader()) write("node.left", { node: node.id, name: node.name, reason });
    },
  };
  for (const [name, listener] of Object.entries(listeners)) events.on(name as never, listener as never);
  return async () => {
    for (const [name, listener] of Object.entries(listeners)) events.off(name as never, listener as never);
    await writing;
    if (dropped > 0) deps.logger.warn(`stopping: ${dropped} cluster events not written, the store is unavailable`);
    return !gaveUp;
  };
}

/** Appends one event to the `nodes` channel; never throws. */
export async function appendNodesEvent(
  deps: Pick<ClusterLogDeps, "store" | "notifier" | "logger">,
  type: ChannelEventType,
  data: Record<string, Json>,
): Promise<void> {
  await appendEvents(deps, [{ type, channel: "nodes", data }]);
}

/** Appends the events in one statement; a failure is logged, and said: the store unavailable or another. */
async function appendEvents(
  deps: Pick<ClusterLogDeps, "store" | "notifier" | "logger">,
  events: NodesEvent[],
): Promise<"written" | "unavailable" | "failed"> {
  try {
    await deps.store.eventAppend({ events, now: new Date() });
    deps.notifier.eventsWritten();
    return "written";
  } catch (error) {
    const types = [...new Set(events.map((event) => event.type))].join(", ");
    const what = events.length === 1 ? `the ${types} event` : `${events.length} events (${types})`;
    deps.logger.warn(`${what} could not be written to the log`, { err: error });
    return isStoreUnavailable(error) ? "unavailable" : "failed";
  }
}
