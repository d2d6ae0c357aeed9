/**
 * The events dispatch appends to the log, the same for both drivers: each on its topic's channel (`topic:<name>`,
 * which `dispatch` subscribers hear too), or on `dispatch` for what has no topic. Data stays small and flat: ids and
 * states, never payloads (a subscriber that wants more reads the API).
 */
import { topicChannel } from "../core/channels.ts";
import type { ChannelEventType, Json } from "../core/task.ts";
import type { AttemptOutcome, Delivery, DeliveryState, Publisher, Topic } from "./dispatch-store.ts";
import { DISPATCH_EVENTS } from "./dispatch-store.ts";

export type DispatchEvent = { type: ChannelEventType; channel: string; data: Json };

export function receivedEvent(
  topic: string,
  messages: number[],
  deliveries: { state: DeliveryState }[],
): DispatchEvent {
  const count = (state: DeliveryState) => deliveries.filter((d) => d.state === state).length;
  return {
    type: DISPATCH_EVENTS.received,
    channel: topicChannel(topic),
    data: {
      topic,
      messages,
      deliveries: deliveries.length,
      pending: count("pending"),
      scheduled: count("scheduled"),
      held: count("held"),
    },
  };
}

export function attemptedEvent(
  topic: string,
  delivery: Delivery,
  attempt: { attempt: number; status: number | null; durationMs: number; error: string | null },
  outcome: AttemptOutcome,
): DispatchEvent {
  return {
    type: DISPATCH_EVENTS.attempted,
    channel: topicChannel(topic),
    data: {
      topic,
      delivery: delivery.id,
      message: delivery.messageId,
      publisher: delivery.publisherId,
      attempt: attempt.attempt,
      status: attempt.status,
      durationMs: attempt.durationMs,
      outcome,
      state: delivery.state,
      nextAttemptAt: delivery.nextAttemptAt?.toISOString() ?? null,
      error: attempt.error,
    },
  };
}

/** Deliveries of one topic that changed state without an attempt (held, discarded, cancelled, due, replayed...). */
export function changedEvent(
  topic: string,
  deliveries: number[],
  state: DeliveryState,
  reason: string,
  publisher: number | null = null,
): DispatchEvent {
  return {
    type: DISPATCH_EVENTS.changed,
    channel: topicChannel(topic),
    data: { topic, deliveries, state, reason, publisher },
  };
}

/** changedEvent for deliveries of several topics: one event per topic. */
export function changedEvents(
  byDelivery: { id: number; topic: string }[],
  state: DeliveryState,
  reason: string,
): DispatchEvent[] {
  const byTopic = new Map<string, number[]>();
  for (const { id, topic } of byDelivery) {
    const ids = byTopic.get(topic) ?? [];
    ids.push(id);
    byTopic.set(topic, ids);
  }
  return [...byTopic].map(([topic, ids]) =>
    changedEvent(
      topic,
      ids.sort((a, b) => a - b),
      state,
      reason,
    ),
  );
}

export type PublisherChange = "created" | "updated" | "enabled" | "disabled" | "deleted";

export function publisherEvent(
  publisher: Publisher,
  change: PublisherChange,
  reason: string | null = null,
): DispatchEvent {
  return {
    type: DISPATCH_EVENTS.publisher,
    channel: topicChannel(publisher.topicName),
    data: {
      topic: publisher.topicName,
      publisher: publisher.id,
      change,
      active: publisher.active,
      deleted: publisher.deleted,
      reason,
    },
  };
}

export function topicEvent(topic: Topic, change: "created" | "updated"): DispatchEvent {
  return {
    type: DISPATCH_EVENTS.topic,
    channel: topicChannel(topic.name),
    data: { topic: topic.name, id: topic.id, change, recoveryEnabled: topic.recoveryEnabled },
  };
}
