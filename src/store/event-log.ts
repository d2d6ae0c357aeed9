/**
 * Reading the event log, the same for every driver. The log keeps one row per transaction: its first offset,
 * its time and its entries. An entry [type, taskId, queue, data] is one event; [type, [taskId, ...], queue, data]
 * is one event per task, in order, all alike (writers group a batch's alike events so; rows written before they
 * did hold single events only).
 */
import type { Json, TaskEvent, TaskEventType } from "../core/task.ts";

export type LogEntry = [type: TaskEventType, taskIds: number | number[], queue: string, data: Json];

export type LogRow = { offset: number; at: Date; entries: LogEntry[] };

/**
 * The events of `rows` (in offset order) after offset `after`, of task `taskId` only when it is given, at most
 * `limit` of them.
 */
export function eventsAfter(
  rows: Iterable<LogRow>,
  { after, limit, taskId }: { after: number; limit: number; taskId?: number | undefined },
): TaskEvent[] {
  const events: TaskEvent[] = [];
  if (limit <= 0) return events;
  for (const { offset: first, at, entries } of rows) {
    let offset = first;
    for (const [type, ids, queue, data] of entries) {
      const group = typeof ids === "number" ? [ids] : ids;
      for (const [k, id] of group.entries()) {
        if (offset > after && (taskId === undefined || id === taskId)) {
          // Events of one entry share its data: each gets a copy of its own.
          events.push({
            offset,
            type,
            taskId: Number(id),
            queue,
            data: k === 0 ? (data ?? null) : structuredClone(data ?? null),
            at: new Date(at),
          });
          if (events.length === limit) return events;
        }
        offset++;
      }
    }
  }
  return events;
}
