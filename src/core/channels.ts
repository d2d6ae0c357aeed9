/**
 * Channels of the live stream: filters over the one event log. A channel is a name:
 *
 *   tasks            every task event
 *   task:<id>        the events of one task
 *   queue:<name>     the events of the tasks of one queue
 *   type:<type>      the events of the tasks of one type
 *   nodes            the cluster: nodes joined and left, leadership, services crashed / restarted / gave up,
 *                    queues paused and resumed
 *   stats            each node's task throughput and timings, per 5-second bucket as it closes
 *   dispatch         dispatch's events: messages received, delivery attempts and changes, publishers, topics
 *   topic:<name>     the dispatch events of one topic (they are on `dispatch` too)
 *   anything else    an application channel: what `conveyor.publish(channel, data)` appends
 *
 * An application channel name is 1 to 200 characters of letters, digits and `_ - . : @ =`, and does not start
 * with a reserved prefix (`task`, `queue:`, `type:`, `node`, `stats`, `conveyor`, `dispatch`, `topic:`). Subscription
 * tokens grant channels by pattern: an exact name, or a prefix ending in `*` (`download:*`).
 */

export const APP_CHANNEL = /^[A-Za-z0-9_\-.:@=]{1,200}$/;
const RESERVED = /^(task|queue:|type:|node|stats|conveyor|dispatch|topic:)/;
const TASK_CHANNEL = /^task:([1-9][0-9]{0,15})$/;
const NAMED_CHANNEL = /^(queue|type):([A-Za-z0-9_\-.:]{1,200})$/;
const TOPIC_CHANNEL = /^topic:([A-Za-z0-9_\-.:@=]{1,194})$/;

/** The channel of all of dispatch's events. */
export const DISPATCH_CHANNEL = "dispatch";

export type Channel =
  | { kind: "tasks" }
  | { kind: "task"; id: number }
  | { kind: "queue"; queue: string }
  | { kind: "type"; type: string }
  | { kind: "nodes" }
  | { kind: "stats" }
  | { kind: "dispatch" }
  | { kind: "topic"; topic: string }
  | { kind: "app"; name: string };

/** The channel a name denotes, or null when it is not a valid channel name. */
export function parseChannel(name: unknown): Channel | null {
  if (typeof name !== "string") return null;
  if (name === "tasks") return { kind: "tasks" };
  if (name === "nodes") return { kind: "nodes" };
  if (name === "stats") return { kind: "stats" };
  if (name === DISPATCH_CHANNEL) return { kind: "dispatch" };
  const topic = TOPIC_CHANNEL.exec(name);
  if (topic !== null) return { kind: "topic", topic: topic[1]! };
  const task = TASK_CHANNEL.exec(name);
  if (task !== null) {
    const id = Number(task[1]);
    return Number.isSafeInteger(id) ? { kind: "task", id } : null;
  }
  const named = NAMED_CHANNEL.exec(name);
  if (named !== null)
    return named[1] === "queue" ? { kind: "queue", queue: named[2]! } : { kind: "type", type: named[2]! };
  if (APP_CHANNEL.test(name) && !RESERVED.test(name)) return { kind: "app", name };
  return null;
}

/**
 * The channel dispatch writes a topic's events to: `topic:<name>`, or `dispatch` alone for a topic whose name has
 * characters a channel name cannot hold (those events are then on `dispatch` only).
 */
export function topicChannel(topic: string): string {
  const channel = `topic:${topic}`;
  return TOPIC_CHANNEL.test(channel) ? channel : DISPATCH_CHANNEL;
}

/** Whether `name` is an application channel (what publish() accepts). */
export function isAppChannel(name: unknown): name is string {
  return typeof name === "string" && APP_CHANNEL.test(name) && !RESERVED.test(name);
}

/** Task and node channels show the system's own data: they need the API token (or a read token) when one is set. */
export function isSystemChannel(channel: Channel): boolean {
  return channel.kind !== "app";
}

/** A channel pattern of a subscription token: an application channel name, or a prefix of one ending in `*`. */
export function isChannelPattern(pattern: unknown): pattern is string {
  if (typeof pattern !== "string" || pattern.length === 0 || pattern.length > 201) return false;
  const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
  return prefix === "" ? false : APP_CHANNEL.test(prefix) && !RESERVED.test(prefix);
}

export function patternMatches(pattern: string, channel: string): boolean {
  return pattern.endsWith("*") ? channel.startsWith(pattern.slice(0, -1)) : channel === pattern;
}
