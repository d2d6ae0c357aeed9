/**
 * How the SQLite driver inserts tasks (taskInsertMany, and scheduleFire's one task), inside the caller's write
 * transaction. A batch without keys goes in INSERT_ROWS tasks per statement (taskInsert), the rest one by one
 * (taskInsertOne); a batch with keys goes in one task at a time, so that a conflict with an active task holding a
 * key (or with an earlier input of the batch) shows as an insert of nothing, and that task is the outcome
 * (taskGetActiveByKey).
 */
import type { SQLInputValue } from "node:sqlite";
import type { TaskState } from "../../core/states.ts";
import type { Task } from "../../core/task.ts";
import type { TaskInsert, TaskInsertOutcome, TaskStartOn } from "../store.ts";
import type { TransactionJournal } from "./journal.ts";
import { rowToTask } from "./row-mapping.ts";
import type { PreparedStatements } from "./statements.ts";

/** Keyless tasks inserted per statement (taskInsert), and the parameters of one. */
const INSERT_ROWS = 50;
const INSERT_ROW = `(${new Array(15).fill("?").join(", ")})`;

/** Appends the parameters of input `index` (taskInsertOne's, in order) to `into`; returns `into`. */
type InsertValues = (index: number, into: SQLInputValue[]) => SQLInputValue[];

/**
 * Inserts the tasks in order; an input whose key an active task (or an earlier input) holds gets that task.
 * Inputs `startOn` names, ready and in a queue that is not paused, are inserted running on its node.
 */
export function insertTasks(
  statements: PreparedStatements,
  journal: TransactionJournal,
  inputs: TaskInsert[],
  now: Date,
  startOn?: TaskStartOn,
): TaskInsertOutcome[] {
  const nowMs = now.getTime();
  const states = insertStates(statements, inputs, nowMs, startOn);
  const values = insertValues(inputs, states, nowMs, journal.ref(), startOn);
  const ids = inputs.every((input) => input.key === null) ? insertRows(statements, inputs.length, values) : null;
  let lastRunAt: Date | null = null;
  let lastRunAtIso = "";
  return inputs.map((input, index) => {
    let id = ids?.[index];
    if (id === undefined) {
      const { changes, lastInsertRowid } = statements.get("taskInsertOne").run(...values(index, []));
      if (changes === 0) {
        const existing = statements.get("taskGetActiveByKey").get({ key: input.key });
        if (existing === undefined) throw new Error("insert conflicted but no active task holds the key");
        return { task: rowToTask(existing), created: false };
      }
      id = Number(lastInsertRowid);
    }
    const state = states[index]!;
    const task = insertedTask(input, id, state, startOn, now);
    const start = state === "running";
    // A batch's tasks mostly share one runAt (now): format it once.
    if (input.runAt !== lastRunAt) {
      lastRunAt = input.runAt;
      lastRunAtIso = input.runAt.toISOString();
    }
    const created = start ? "queued" : state;
    journal.event("task.created", id, task.queue, { type: task.type, state: created, runAt: lastRunAtIso }, now);
    if (start) journal.event("task.started", id, task.queue, { attempt: 1, node: startOn!.node }, now);
    journal.count(task.queue, null, state);
    return { task, created: true };
  });
}

/** The InsertValues of `inputs`, going in as `states` at `nowMs`, their events in the log row `ref` names. */
function insertValues(
  inputs: TaskInsert[],
  states: TaskState[],
  nowMs: number,
  ref: string,
  startOn: TaskStartOn | undefined,
): InsertValues {
  return (index, into) => {
    const input = inputs[index]!;
    const start = states[index] === "running";
    into.push(
      input.queue,
      input.type,
      JSON.stringify(input.data),
      input.priority,
      states[index]!,
      input.maxAttempts,
      input.runAt.getTime(),
      input.key,
      input.timeoutMs,
      input.backoffMs,
      nowMs,
      ref,
      start ? 1 : 0,
      start ? startOn!.node : null,
      start ? nowMs : null,
    );
    return into;
  };
}

/** The state each input goes in with: scheduled when not due yet, running when `startOn` starts it, else queued. */
function insertStates(
  statements: PreparedStatements,
  inputs: TaskInsert[],
  nowMs: number,
  startOn: TaskStartOn | undefined,
): TaskState[] {
  const starting = new Set(startOn?.indexes);
  const pausedQueues = new Map<string, boolean>();
  const isPaused = (queue: string): boolean => {
    let paused = pausedQueues.get(queue);
    if (paused === undefined) paused = statements.get("queuePaused").get({ name: queue }) !== undefined;
    pausedQueues.set(queue, paused);
    return paused;
  };
  return inputs.map((input, index): TaskState => {
    const runAt = input.runAt.getTime();
    if (runAt > nowMs) return "scheduled";
    return startOn !== undefined && starting.has(index) && !isPaused(input.queue) ? "running" : "queued";
  });
}

/**
 * Inserts `count` keyless tasks, whose parameters `values` appends, INSERT_ROWS at a time (taskInsert) and the
 * rest one by one (taskInsertOne); returns their ids in order.
 * Nothing can conflict and this transaction is the only writer, so each statement's rows get consecutive ids.
 */
function insertRows(statements: PreparedStatements, count: number, values: InsertValues): number[] {
  const ids: number[] = [];
  let next = 0;
  for (; next + INSERT_ROWS <= count; next += INSERT_ROWS) {
    const args: SQLInputValue[] = [];
    for (let index = next; index < next + INSERT_ROWS; index++) values(index, args);
    const { changes, lastInsertRowid } = statements.withRows("taskInsert", INSERT_ROW, INSERT_ROWS).run(...args);
    if (changes !== INSERT_ROWS) throw new Error(`taskInsert inserted ${changes} of ${INSERT_ROWS} rows`);
    const last = Number(lastInsertRowid);
    for (let id = last - INSERT_ROWS + 1; id <= last; id++) ids.push(id);
  }
  for (; next < count; next++)
    ids.push(Number(statements.get("taskInsertOne").run(...values(next, [])).lastInsertRowid));
  return ids;
}

/**
 * A task just inserted from `input` with id `id` in state `state`: every other field is the input's or a default.
 * A task inserted running was started by the insert, on `startOn`'s node: attempt 1, started at `now`.
 */
function insertedTask(
  input: TaskInsert,
  id: number,
  state: TaskState,
  startOn: TaskStartOn | undefined,
  now: Date,
): Task {
  const start = state === "running";
  return {
    id,
    queue: input.queue,
    type: input.type,
    data: input.data,
    priority: input.priority,
    state,
    attempt: start ? 1 : 0,
    maxAttempts: input.maxAttempts,
    stalls: 0,
    runAt: input.runAt,
    key: input.key,
    progress: null,
    result: null,
    error: null,
    errors: [],
    timeoutMs: input.timeoutMs,
    backoffMs: input.backoffMs,
    node: start ? startOn!.node : null,
    createdAt: now,
    startedAt: start ? now : null,
    finishedAt: null,
  };
}
