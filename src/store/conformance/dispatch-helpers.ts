/**
 * What dispatch's conformance cases share: a delivery task template, a topic with publishers, messages sent to it,
 * and the dispatch events of the log.
 */
import assert from "node:assert/strict";
import type { Json, LogEvent } from "../../core/task.ts";
import type { DeliveryTaskTemplate, MessageInput, Publisher, PublisherInput, Topic } from "../dispatch-store.ts";
import type { Store } from "../store.ts";
import { T0 } from "./helpers.ts";

export const TASK: DeliveryTaskTemplate = {
  queue: "dispatch",
  type: "dispatch.deliver",
  priority: 0,
  maxAttempts: 5,
  timeoutMs: null,
  backoffMs: null,
};

export function publisherInput(topicId: number, partial: Partial<PublisherInput> = {}): PublisherInput {
  return {
    topicId,
    target: "http://receiver.test/hook",
    type: "http",
    active: true,
    secondsTimeout: 5,
    secondsRetry: 30,
    retryMode: "schedule",
    maxAttempts: null,
    chunkSize: null,
    concurrency: null,
    secrets: [],
    ...partial,
  };
}

export async function topic(store: Store, name = "orders", now = T0): Promise<Topic> {
  return store.dispatch.topicCreate({
    topic: { name, originHost: "http://origin.test/", recoveryEnabled: false },
    now,
  });
}

export async function publisher(
  store: Store,
  topicId: number,
  partial: Partial<PublisherInput> = {},
  now = T0,
): Promise<Publisher> {
  return store.dispatch.publisherCreate({ publisher: publisherInput(topicId, partial), now });
}

export function message(payload: Json = { n: 1 }, attributes: { [key: string]: Json } = {}, key: string | null = null) {
  return { payload, attributes, idempotencyKey: key } satisfies MessageInput;
}

/** Sends `messages` to topic `topicId` at `now` (due then); returns the outcomes and tasks. */
export async function send(store: Store, topicId: number, messages: MessageInput[], now = T0, runAt = now) {
  return store.dispatch.messageInsert({ topicId, messages, runAt, task: TASK, now });
}

/** The single pending delivery of a one-publisher topic's message, with the generation its task carries. */
export async function sendOne(store: Store, topicId: number, now = T0): Promise<{ id: number; generation: number }> {
  const { outcomes, tasks } = await send(store, topicId, [message()], now);
  assert.equal(tasks.length, 1);
  const data = tasks[0]!.data as { delivery: number; generation: number };
  assert.equal(data.delivery, outcomes[0]!.deliveries[0]!.id);
  return { id: data.delivery, generation: data.generation };
}

/** The log's dispatch events (channel events other than application messages), oldest first. */
export async function dispatchEvents(store: Store): Promise<LogEvent[]> {
  const events = await store.eventList({ after: 0, limit: 10_000 });
  return events.filter((e) => e.channel !== null && (e.channel === "dispatch" || e.channel.startsWith("topic:")));
}

/** An attempt as a delivery task records it, at `at`. */
export function attemptAt(at: Date, status: number | null, taskId = 1) {
  return {
    taskId,
    at,
    durationMs: 12,
    status,
    error: status === null ? "connect ECONNREFUSED" : status >= 300 ? `answered ${status}` : null,
    responseBody: status === null ? null : "ok",
    request: { target: "http://receiver.test/hook", headers: { "content-type": "application/json" } },
  };
}
