/**
 * Reading the event log, the same for every driver. The log keeps one row per transaction: its first offset,
 * its time and its entries. An entry [type, taskId, queue, data] is one event; [type, [taskId, ...], queue, data]
 * is one event per task, in order, all alike (writers group a batch's alike events so; rows written before they
 * did hold single events only). An event that belongs to no task (a channel's: CHANNEL_EVENT_TYPES) has task id 0
 * and its channel in place of the queue.
 */
import { CHANNEL_EVENT_TYPES, type Json, type LogEvent, type LogEventType } from "../core/task.ts";

export type LogEntry = [type: LogEventType, taskIds: number | number[], queue: string, data: Json];

const CHANNEL_EVENTS = new Set<string>(CHANNEL_EVENT_TYPES);

/** The entry of a channel's event. */
export function channelEntry(type: LogEventType, channel: string, data: Json): LogEntry {
  return [type, 0, channel, data];
}

export type LogRow = { offset: number; at: Date; entries: LogEntry[] };

/**
 * The events of `rows` (in offset order) after offset `after`, of task `taskId` only when it is given, at most
 * `limit` of them.
 */
export function eventsAfter(
  rows: Iterable<LogRow>,
  { after, limit, taskId }: { after: number; limit: number; taskId?: number | undefined },
): LogEvent[] {
  const events: LogEvent[] = [];
  if (limit <= 0) return events;
  for (const { offset: first, at, entries } of rows) {
    let offset = first;
    for (const [type, ids, queue, data] of entries) {
      const group = typeof ids === "number" ? [ids] : ids;
      const channel = CHANNEL_EVENTS.has(type) ? queue : null;
      for (const [k, id] of group.entries()) {
        if (offset > after && (taskId === undefined || (channel === null && id === taskId))) {
          // Events of one entry share its data: each gets a copy of its own.
          events.push({
            offset,
            type,
            taskId: Number(id),
            queue: channel === null ? queue : "",
            channel,
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
