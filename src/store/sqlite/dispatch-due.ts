/**
 * What makes SQLite deliveries due, inside the caller's write transaction: the retry timer's promotion (scheduled and
 * due: pending, with a task each) and replays (failed or cancelled: scheduled now, or held when the publisher is
 * disabled), with their events.
 */
import type { Task } from "../../core/task.ts";
import { changedEvents } from "../dispatch-events.ts";
import type { DispatchRow } from "../dispatch-rows.ts";
import { type DeliveryTaskTemplate, deliveryTask } from "../dispatch-store.ts";
import type { SqliteDispatchDeps } from "./dispatch.ts";
import type { DispatchStatements } from "./dispatch-statements.ts";

export function promoteDue(
  statements: DispatchStatements,
  deps: SqliteDispatchDeps,
  { now, limit, task }: { now: Date; limit: number; task: DeliveryTaskTemplate },
): Task[] {
  const due = statements.get("deliveriesDue").all({ now: now.getTime(), limit }) as DispatchRow[];
  if (due.length === 0) return [];
  const inserts = due.map((row) => {
    const made = statements.get("deliveryMakePending").get({ id: Number(row.id), now: now.getTime() }) as DispatchRow;
    return deliveryTask(task, Number(row.id), Number(made.generation), now);
  });
  const tasks = deps.insertTasks(inserts, now).map((outcome) => outcome.task);
  const byDelivery = due.map((row) => ({ id: Number(row.id), topic: String(row.topic) }));
  for (const event of changedEvents(byDelivery, "pending", "due")) deps.event(event, now);
  return tasks;
}

export function replayDeliveries(
  statements: DispatchStatements,
  deps: SqliteDispatchDeps,
  params: { ids?: number[]; window?: { publisherId: number; from: Date; to: Date }; limit: number; now: Date },
): number[] {
  const { window, now } = params;
  const ids =
    window === undefined
      ? (params.ids ?? []).slice(0, params.limit)
      : (
          statements.get("deliveriesReplayWindow").all({
            publisher_id: window.publisherId,
            from: window.from.getTime(),
            to: window.to.getTime(),
            limit: params.limit,
          }) as DispatchRow[]
        ).map((row) => Number(row.id));
  const replayed: { id: number; state: string }[] = [];
  for (const id of ids) {
    const row = statements.get("deliveryReplay").get({ id, now: now.getTime() }) as DispatchRow | undefined;
    if (row !== undefined) replayed.push({ id: Number(row.id), state: String(row.state) });
  }
  if (replayed.length === 0) return [];
  const topics = statements
    .get("topicOfDeliveries")
    .all({ ids: JSON.stringify(replayed.map((r) => r.id)) }) as DispatchRow[];
  const topicOf = new Map(topics.map((t) => [Number(t.id), String(t.topic)]));
  for (const state of ["scheduled", "held"] as const) {
    const these = replayed.filter((r) => r.state === state).map((r) => ({ id: r.id, topic: topicOf.get(r.id)! }));
    for (const event of changedEvents(these, state, "replayed")) deps.event(event, now);
  }
  return replayed.map((r) => r.id);
}
