/**
 * Dispatch's resources as the API shows them: Postoffice's snake_case names (the fields its clients already send,
 * `origin_host`, `seconds_timeout`...), times as ISO text. A publisher's signing secrets are never listed, only how
 * many sign and until when the rotated-out ones do: GET /api/publishers/:id/secret gives the current one.
 */
import type { DeliveryView } from "../dispatch/messages.ts";
import type { Attempt, Delivery, Message, Publisher, Topic } from "../store/dispatch-store.ts";

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

export function topicJson(topic: Topic) {
  return {
    id: topic.id,
    name: topic.name,
    origin_host: topic.originHost,
    recovery_enabled: topic.recoveryEnabled,
    created_at: iso(topic.createdAt),
    updated_at: iso(topic.updatedAt),
  };
}

export function publisherJson(publisher: Publisher) {
  return {
    id: publisher.id,
    topic: publisher.topicName,
    topic_id: publisher.topicId,
    target: publisher.target,
    type: publisher.type,
    active: publisher.active,
    deleted: publisher.deleted,
    seconds_timeout: publisher.secondsTimeout,
    seconds_retry: publisher.secondsRetry,
    retry_mode: publisher.retryMode,
    max_attempts: publisher.maxAttempts,
    chunk_size: publisher.chunkSize,
    concurrency: publisher.concurrency,
    signing: {
      secrets: publisher.secrets.length,
      rotated_until: publisher.secrets.find((s) => s.expiresAt !== null)?.expiresAt ?? null,
    },
    disabled_reason: publisher.disabledReason,
    failing_since: iso(publisher.failingSince),
    created_at: iso(publisher.createdAt),
    updated_at: iso(publisher.updatedAt),
  };
}

export function messageJson(message: Message) {
  return {
    id: message.id,
    topic: message.topicName,
    payload: message.payload,
    attributes: message.attributes,
    idempotency_key: message.idempotencyKey,
    received_at: iso(message.receivedAt),
  };
}

function deliveryFields(delivery: Delivery) {
  return {
    id: delivery.id,
    message_id: delivery.messageId,
    publisher_id: delivery.publisherId,
    state: delivery.state,
    attempts: delivery.attempts,
    next_attempt_at: iso(delivery.nextAttemptAt),
    last_status: delivery.lastStatus,
    last_error: delivery.lastError,
    received_at: iso(delivery.receivedAt),
    created_at: iso(delivery.createdAt),
    updated_at: iso(delivery.updatedAt),
    finished_at: iso(delivery.finishedAt),
  };
}

export function deliveryJson(delivery: DeliveryView) {
  return {
    ...deliveryFields(delivery),
    publisher: delivery.publisher,
    history: delivery.history.map(attemptJson),
  };
}

export function attemptJson(attempt: Attempt) {
  return {
    attempt: attempt.attempt,
    at: iso(attempt.at),
    task_id: attempt.taskId,
    duration_ms: attempt.durationMs,
    status: attempt.status,
    outcome: attempt.outcome,
    error: attempt.error,
    response_body: attempt.responseBody,
    request: attempt.request,
    next_attempt_at: iso(attempt.nextAttemptAt),
  };
}
