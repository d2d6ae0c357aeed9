/**
 * messageInsert for the SQLite driver, inside the caller's write transaction: the messages (a key seen before gives
 * the existing message), their words and attributes for search, one delivery per undeleted publisher, and a task for
 * each delivery ready to send, all in the one transaction; then one dispatch.received event per call.
 */
import type { TaskInsert, TaskInsertOutcome } from "../store.ts";
import {
  type DeliveryState,
  type DeliveryTaskTemplate,
  deliveryTask,
  type MessageInput,
  type MessageInsertOutcome,
} from "../dispatch-store.ts";
import { receivedEvent, type DispatchEvent } from "../dispatch-events.ts";
import { attributeText } from "../dispatch-rows.ts";
import type { DispatchStatements } from "./dispatch-statements.ts";

export type MessageInsertDeps = {
  statements: DispatchStatements;
  insertTasks: (tasks: TaskInsert[], now: Date) => TaskInsertOutcome[];
  event: (event: DispatchEvent, now: Date) => void;
};

export type MessageInsertParams = {
  topicId: number;
  topicName: string;
  messages: MessageInput[];
  runAt: Date;
  task: DeliveryTaskTemplate;
  now: Date;
};

export function insertMessages(
  deps: MessageInsertDeps,
  params: MessageInsertParams,
): { outcomes: MessageInsertOutcome[]; tasks: TaskInsertOutcome["task"][] } {
  const { statements } = deps;
  const { topicId, now, runAt } = params;
  const nowMs = now.getTime();
  const due = runAt.getTime() <= nowMs;
  const publishers = statements.get("publishersOfTopic").all({ topic_id: topicId });
  const outcomes: MessageInsertOutcome[] = [];
  const ready: number[] = [];
  const created: { state: DeliveryState }[] = [];
  const messageIds: number[] = [];
  for (const input of params.messages) {
    const existing =
      input.idempotencyKey === null ? undefined : statements.get("messageByKey").get({ key: input.idempotencyKey });
    if (existing !== undefined) {
      const deliveries = statements
        .get("deliveriesOfMessage")
        .all({ message_id: Number(existing.id) })
        .map((row) => ({
          id: Number(row.id),
          publisherId: Number(row.publisher_id),
          state: row.state as DeliveryState,
        }));
      const message = { id: Number(existing.id), receivedAt: new Date(Number(existing.received_at)) };
      outcomes.push({ message, created: false, deliveries });
      continue;
    }
    const payload = JSON.stringify(input.payload);
    const { lastInsertRowid } = statements.get("messageInsert").run({
      topic_id: topicId,
      payload,
      attributes: JSON.stringify(input.attributes),
      key: input.idempotencyKey,
      now: nowMs,
    });
    const id = Number(lastInsertRowid);
    messageIds.push(id);
    statements.get("messageWordsInsert").run({ id, payload });
    for (const [key, value] of Object.entries(input.attributes))
      statements.get("messageAttributeInsert").run({ key, value: attributeText(value), at: nowMs, id });
    const deliveries = publishers.map((publisher) => {
      const state: DeliveryState = Number(publisher.active) !== 1 ? "held" : due ? "pending" : "scheduled";
      const delivery = statements.get("deliveryInsert").run({
        message_id: id,
        publisher_id: Number(publisher.id),
        state,
        next_attempt_at: state === "scheduled" ? runAt.getTime() : null,
        now: nowMs,
      });
      const deliveryId = Number(delivery.lastInsertRowid);
      if (state === "pending") ready.push(deliveryId);
      created.push({ state });
      return { id: deliveryId, publisherId: Number(publisher.id), state };
    });
    outcomes.push({ message: { id, receivedAt: now }, created: true, deliveries });
  }
  const tasks = deps
    .insertTasks(
      ready.map((delivery) => deliveryTask(params.task, delivery, 1, now)),
      now,
    )
    .map((outcome) => outcome.task);
  if (messageIds.length > 0) deps.event(receivedEvent(params.topicName, messageIds, created), now);
  return { outcomes, tasks };
}
