/**
 * deliveryRecordMany for the SQLite driver, inside the caller's write transaction: the attempts, their deliveries'
 * new states, the publishers' failing marks and disables, and their events.
 */
import { attemptedEvent, publisherEvent } from "../dispatch-events.ts";
import { type DispatchRow, rowToDelivery, rowToPublisher } from "../dispatch-rows.ts";
import type { AttemptRecord, Delivery } from "../dispatch-store.ts";
import type { SqliteDispatchDeps } from "./dispatch.ts";
import type { DispatchStatements } from "./dispatch-statements.ts";

/**
 * deliveryRecordMany's transaction: each attempt and its delivery's new state (a stale one changes nothing), the
 * topics of all in one read, each publisher's failing mark written once (a success anywhere in the batch clears it),
 * the disables asked for, and the events.
 */
export function recordAttempts(
  statements: DispatchStatements,
  deps: SqliteDispatchDeps,
  records: AttemptRecord[],
  now: Date,
): (Delivery | null)[] {
  const nowMs = now.getTime();
  const topics = new Map(
    statements
      .get("topicOfDeliveries")
      .all({ ids: JSON.stringify(records.map((r) => r.deliveryId)) })
      .map((row) => [Number(row.id), String(row.topic)]),
  );
  const succeeded = new Set<number>();
  const failed = new Set<number>();
  const outcomes = records.map((record) => {
    const { attempt, outcome } = record;
    const row = statements.get("deliveryAfterAttempt").get({
      id: record.deliveryId,
      generation: record.generation,
      state: { delivered: "delivered", retry: "scheduled", failed: "failed", gone: "held" }[outcome],
      step: outcome === "retry" || outcome === "failed" ? 1 : 0,
      next_attempt_at: record.nextAttemptAt?.getTime() ?? null,
      status: attempt.status,
      error: attempt.error,
      now: nowMs,
    }) as DispatchRow | undefined;
    if (row === undefined) return null;
    const delivery = rowToDelivery(row);
    statements.get("deliveryAttemptInsert").run({
      delivery_id: delivery.id,
      attempt: delivery.attempts,
      task_id: attempt.taskId,
      at: attempt.at.getTime(),
      duration_ms: Math.round(attempt.durationMs),
      status: attempt.status,
      outcome,
      error: attempt.error,
      response_body: attempt.responseBody,
      request: JSON.stringify(attempt.request),
      next_attempt_at: record.nextAttemptAt?.getTime() ?? null,
    });
    (outcome === "delivered" ? succeeded : failed).add(delivery.publisherId);
    const topic = topics.get(delivery.id)!;
    deps.event(attemptedEvent(topic, delivery, { ...attempt, attempt: delivery.attempts }, outcome), now);
    return delivery;
  });
  for (const id of succeeded) statements.get("publisherSucceeded").run({ id });
  for (const id of failed) if (!succeeded.has(id)) statements.get("publisherFailed").run({ id, now: nowMs });
  records.forEach((record, i) => {
    const delivery = outcomes[i];
    if (delivery === null || delivery === undefined || record.disablePublisher === null) return;
    const reason = record.disablePublisher;
    const disabled = statements.get("publisherDisable").run({ id: delivery.publisherId, reason, now: nowMs });
    if (Number(disabled.changes) === 0) return;
    const publisher = rowToPublisher(statements.get("publisherById").get({ id: delivery.publisherId }) as DispatchRow);
    deps.event(publisherEvent(publisher, "disabled", reason), now);
  });
  return outcomes;
}
