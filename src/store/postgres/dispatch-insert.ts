/**
 * The PostgreSQL DispatchStore's operations that insert delivery tasks, inside the caller's transaction:
 * messageInsert (one statement for the messages, their attributes, deliveries and event; one more for the tasks of
 * those ready to send, through the task inserts of insert.ts) and deliveryPromoteDue (one statement to promote, one
 * for the tasks). A task and the delivery it carries commit together or not at all.
 */
import type pg from "pg";
import type { Task } from "../../core/task.ts";
import {
  type DeliveryState,
  type DeliveryTaskTemplate,
  deliveryTask,
  type MessageInput,
  type MessageInsertOutcome,
} from "../dispatch-store.ts";
import type { DispatchRunner } from "./dispatch-runner.ts";
import { insertTasks } from "./insert.ts";

type NewMessage = [id: number, key: string | null];
type NewDelivery = [id: number, messageId: number, publisherId: number, state: DeliveryState];

export async function insertMessages(
  db: DispatchRunner,
  client: pg.PoolClient,
  params: { topicId: number; messages: MessageInput[]; runAt: Date; task: DeliveryTaskTemplate; now: Date },
): Promise<{ outcomes: MessageInsertOutcome[]; tasks: Task[] }> {
  const { now } = params;
  const input = JSON.stringify(params.messages.map((m) => [m.payload, m.attributes, m.idempotencyKey]));
  const { rows } = await db.run("messageInsert", [params.topicId, input, now, params.runAt], client);
  const inserted = rows[0]!.messages as NewMessage[];
  const deliveries = rows[0]!.deliveries as NewDelivery[];
  const byMessage = new Map<number, MessageInsertOutcome["deliveries"]>();
  for (const [id, messageId, publisherId, state] of deliveries) {
    const list = byMessage.get(messageId) ?? [];
    list.push({ id, publisherId, state });
    byMessage.set(messageId, list);
  }
  const existing = await existingMessages(db, client, params.messages, inserted);
  // Ids were drawn in input order: the new rows, by id, line up with the inputs that were inserted.
  let next = 0;
  const outcomes = params.messages.map((message): MessageInsertOutcome => {
    const key = message.idempotencyKey;
    const found = key === null ? undefined : existing.get(key);
    if (found !== undefined) return found;
    const [id, rowKey] = inserted[next++] ?? [];
    if (id === undefined || rowKey !== key)
      throw new Error("messageInsert: inserted rows do not line up with the input");
    return { message: { id, receivedAt: new Date(now.getTime()) }, created: true, deliveries: byMessage.get(id) ?? [] };
  });
  const ready = deliveries.filter(([, , , state]) => state === "pending");
  const tasks = await insertDeliveryTasks(
    db,
    client,
    params.task,
    ready.map(([id]) => [id, 1]),
    now,
  );
  return { outcomes, tasks };
}

/** The messages that held the idempotency keys of inputs not inserted (their outcome, created: false). */
async function existingMessages(
  db: DispatchRunner,
  client: pg.PoolClient,
  messages: MessageInput[],
  inserted: NewMessage[],
): Promise<Map<string, MessageInsertOutcome>> {
  const insertedKeys = new Set(inserted.map(([, key]) => key));
  const missing = messages.flatMap((m) =>
    m.idempotencyKey !== null && !insertedKeys.has(m.idempotencyKey) ? [m.idempotencyKey] : [],
  );
  const found = new Map<string, MessageInsertOutcome>();
  if (missing.length === 0) return found;
  const { rows } = await db.run("messagesByKeys", [missing], client);
  for (const row of rows) {
    const deliveries = (row.deliveries as [number, number, DeliveryState][]).map(([id, publisherId, state]) => ({
      id,
      publisherId,
      state,
    }));
    const message = { id: Number(row.id), receivedAt: row.received_at as Date };
    found.set(String(row.idempotency_key), { message, created: false, deliveries });
  }
  return found;
}

export async function promoteDue(
  db: DispatchRunner,
  client: pg.PoolClient,
  params: { now: Date; limit: number; task: DeliveryTaskTemplate },
): Promise<Task[]> {
  const { rows } = await db.run("deliveryPromoteDue", [params.now, params.limit], client);
  const due = rows.map((row): [number, number] => [Number(row.id), Number(row.generation)]);
  return insertDeliveryTasks(db, client, params.task, due, params.now);
}

async function insertDeliveryTasks(
  db: DispatchRunner,
  client: pg.PoolClient,
  template: DeliveryTaskTemplate,
  deliveries: [id: number, generation: number][],
  now: Date,
): Promise<Task[]> {
  if (deliveries.length === 0) return [];
  const inserts = deliveries.map(([id, generation]) => deliveryTask(template, id, generation, now));
  const outcomes = await insertTasks((name, values) => db.runTask(name, values, client), inserts, now);
  return outcomes.map((outcome) => outcome.task);
}
