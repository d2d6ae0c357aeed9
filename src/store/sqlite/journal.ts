/**
 * The journal of the current write transaction: the events it records and its changes to the counts per queue and
 * state, kept in memory while the transaction runs and written just before its COMMIT, one statement for the events
 * (one event-log row per transaction) and one per changed count. The store flushes it at commit and discards it on
 * rollback (SqliteStore's #write).
 *
 * SQLite has a single writer: while a transaction holds the write lock, no other transaction can write a log row, so
 * the offset of this transaction's row can be read once, when first needed, and handed to the statements that
 * record events (the `:ref` appended to each task's event_refs) before the row itself is written.
 *
 * The PostgreSQL driver has no twin of this file: each of its statements keeps its counts and appends its events
 * itself, in CTEs (postgres/queries/task.sql).
 */
import type { TaskState } from "../../core/states.ts";
import type { Json, LogEventType } from "../../core/task.ts";
import type { LogEntry } from "../event-log.ts";
import type { PreparedStatements } from "./statements.ts";

export class TransactionJournal {
  readonly #statements: PreparedStatements;
  /** Events of the current transaction, as entries of its event-log row (see LogEntry). */
  #events: LogEntry[] = [];
  /** How many events #events stands for. */
  #eventCount = 0;
  #eventsAt = 0;
  /** Offset of the log row the current transaction writes; read once per transaction, when first needed. */
  #logOffset: number | null = null;
  /** Changes to queue_counts in the current transaction, by queue then state. */
  readonly #countDeltas = new Map<string, Map<TaskState, number>>();

  constructor(statements: PreparedStatements) {
    this.#statements = statements;
  }

  /** `' <offset>'` of the current transaction's log row, for the `:ref` of statements that record events. */
  ref(): string {
    this.#logOffset ??= Number(this.#statements.get("eventLogNextOffset").get({})!.offset);
    return ` ${this.#logOffset}`;
  }

  /** Records an event of the current transaction. */
  event(type: LogEventType, taskId: number, queue: string, data: Json, at: Date): void {
    // Every event of one operation carries the operation's `now`: one time per log row.
    if (this.#eventCount++ === 0) this.#eventsAt = at.getTime();
    // An event like the one before (a batch's task.created, a claim's task.started) joins its entry: the row
    // then holds a few bytes per task instead of a whole entry, and stays within its page.
    const last = this.#events[this.#events.length - 1];
    if (last !== undefined && last[0] === type && last[2] === queue && sameFlatData(last[3], data)) {
      if (typeof last[1] === "number") last[1] = [last[1], taskId];
      else last[1].push(taskId);
      return;
    }
    this.#events.push([type, taskId, queue, data]);
  }

  /** Records that `n` tasks of `queue` moved from state `from` (null: newly inserted) to `to` (null: deleted). */
  count(queue: string, from: TaskState | null, to: TaskState | null, n = 1): void {
    let deltas = this.#countDeltas.get(queue);
    if (deltas === undefined) {
      deltas = new Map();
      this.#countDeltas.set(queue, deltas);
    }
    if (from !== null) deltas.set(from, (deltas.get(from) ?? 0) - n);
    if (to !== null) deltas.set(to, (deltas.get(to) ?? 0) + n);
  }

  /** Writes what the transaction recorded (its last statements before COMMIT) and empties the journal. */
  flush(): void {
    this.#flushEvents();
    this.#flushCounts();
  }

  /** Forgets what the transaction recorded: it rolled back. */
  discard(): void {
    this.#events = [];
    this.#eventCount = 0;
    this.#logOffset = null;
    this.#countDeltas.clear();
  }

  #flushEvents(): void {
    if (this.#eventCount === 0) {
      this.#logOffset = null;
      return;
    }
    this.ref();
    const row = {
      offset: this.#logOffset,
      count: this.#eventCount,
      at: this.#eventsAt,
      events: JSON.stringify(this.#events),
    };
    this.#events = [];
    this.#eventCount = 0;
    this.#logOffset = null;
    this.#statements.get("eventLogAppend").run(row);
  }

  #flushCounts(): void {
    if (this.#countDeltas.size === 0) return;
    const statement = this.#statements.get("queueCountsAdd");
    for (const [queue, deltas] of this.#countDeltas)
      for (const [state, delta] of deltas) if (delta !== 0) statement.run(queue, state, delta);
    this.#countDeltas.clear();
  }
}

/** Whether two events' data are alike: the same value, or flat objects with the same keys and primitive values. */
function sameFlatData(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (
    a === null ||
    b === null ||
    typeof a !== "object" ||
    typeof b !== "object" ||
    Array.isArray(a) ||
    Array.isArray(b)
  )
    return false;
  let keys = 0;
  for (const key in a) {
    const value = a[key];
    if (value !== b[key] || (typeof value === "object" && value !== null)) return false;
    keys++;
  }
  for (const _ in b) keys--;
  return keys === 0;
}
