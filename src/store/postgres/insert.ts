/**
 * How the PostgreSQL driver inserts tasks (taskInsertMany, and scheduleFire's one task): each round is one
 * statement, chosen by what the inputs need. One input goes through taskInsertOne (what an enqueue() of one task
 * waits for); a batch that differs only in its tasks' data through taskInsertUniform (nothing read per task but its
 * data); any other batch through taskInsert. Inputs whose key an active task holds get that task (taskGetActiveByKeys),
 * and those whose holder finished meanwhile go round again.
 *
 * The statements return only ids (and key and state where they vary): the driver knows every other column of a new
 * task already, and reading back 500 full rows costs more than inserting them.
 */
import type pg from "pg";
import type { TaskState } from "../../core/states.ts";
import type { Json, Task } from "../../core/task.ts";
import type { TaskInsert, TaskInsertOutcome, TaskStartOn } from "../store.ts";
import { jsonParam, type Row, rowToTask } from "./row-mapping.ts";

/** Runs named statement `name` with `values`: on the pool, or on the client of the caller's transaction. */
export type RunStatement = (name: string, values: unknown[]) => Promise<pg.QueryResult<Row>>;

/** How often an insert retries a key whose holder finished between its conflict and the look-up. */
const MAX_INSERT_ROUNDS = 5;

/** A new task as taskInsert and taskInsertOne return it. */
type InsertedRow = [id: number, key: string | null, state: TaskState];

/** The data of a task.created event. */
type CreatedEventData = { type: string; state: TaskState; runAt: string };

/** One insert call: its inputs, their outcomes as rounds find them, and where and when its statements run. */
type InsertCall = {
  run: RunStatement;
  tasks: TaskInsert[];
  now: Date;
  startOn: TaskStartOn | undefined;
  outcomes: (TaskInsertOutcome | undefined)[];
};

/**
 * Inserts `tasks` in input order (ids increase with it), through `run`. A key appears once per statement: a later
 * input with a key seen earlier in the batch gets the first one's task, not created. An input whose key an active
 * task holds gets that task, looked up after the insert (the insert may have waited for it to commit); if it has
 * already finished by then, the input is inserted again. Inputs `startOn` names are inserted running on its node
 * when they are ready and their queue is not paused (the statement decides).
 */
export async function insertTasks(
  run: RunStatement,
  tasks: TaskInsert[],
  now: Date,
  startOn?: TaskStartOn,
): Promise<TaskInsertOutcome[]> {
  const call: InsertCall = { run, tasks, now, startOn, outcomes: new Array(tasks.length) };
  const firstWithKey = new Map<string, number>();
  let pending: number[] = [];
  for (const [index, task] of tasks.entries()) {
    if (task.key !== null && firstWithKey.has(task.key)) continue;
    if (task.key !== null) firstWithKey.set(task.key, index);
    pending.push(index);
  }
  for (let round = 0; pending.length > 0; round++) {
    if (round === MAX_INSERT_ROUNDS)
      throw new Error(`taskInsertMany: keys kept changing hands after ${round} attempts`);
    pending = await insertRound(call, pending);
  }
  return tasks.map((task, index) => {
    const own = call.outcomes[index];
    if (own !== undefined) return own;
    const first = task.key === null ? undefined : call.outcomes[firstWithKey.get(task.key)!];
    if (first === undefined) throw new Error(`taskInsertMany: no outcome for input ${index}`);
    return { task: first.task, created: false };
  });
}

/** One insert statement for the inputs at `indexes`; fills their outcomes and returns those left to retry. */
async function insertRound(call: InsertCall, indexes: number[]): Promise<number[]> {
  const { tasks, startOn } = call;
  if (indexes.length === 1) {
    const index = indexes[0]!;
    return insertOne(call, index, startOn?.indexes.includes(index) ? startOn : undefined);
  }
  if (startOn === undefined && isUniform(tasks, indexes)) {
    const first = tasks[indexes[0]!]!;
    return insertUniform(call, indexes, createdEventData(first, call.now.getTime(), first.runAt.toISOString()));
  }
  return insertBatch(call, indexes);
}

/** insertRound for one input (taskInsertOne), started on `startOn`'s node when it is given. */
async function insertOne(call: InsertCall, index: number, startOn: TaskStartOn | undefined): Promise<number[]> {
  const { now } = call;
  const t = call.tasks[index]!;
  const created = createdEventData(t, now.getTime(), t.runAt.toISOString());
  const result = await call.run("taskInsertOne", [
    t.queue,
    t.type,
    jsonParam(t.data),
    t.priority,
    t.maxAttempts,
    t.runAt,
    t.key,
    t.timeoutMs,
    t.backoffMs,
    now,
    startOn?.node ?? null,
    JSON.stringify(created),
  ]);
  const row = (result.rows[0]?.rows as InsertedRow[] | null)?.[0];
  if (row === undefined) return holdersOf(call, [index]);
  const [id, , state] = row;
  call.outcomes[index] = { task: insertedTask(t, id, state, startOn, now), created: true };
  return [];
}

/** insertRound for a batch that differs only in its tasks' data (taskInsertUniform): nothing to retry. */
async function insertUniform(call: InsertCall, indexes: number[], created: CreatedEventData): Promise<number[]> {
  const { tasks, now } = call;
  const t = tasks[indexes[0]!]!;
  const result = await call.run("taskInsertUniform", [
    t.queue,
    t.type,
    t.priority,
    created.state,
    t.maxAttempts,
    t.runAt,
    t.timeoutMs,
    t.backoffMs,
    now,
    JSON.stringify(indexes.map((index) => tasks[index]!.data ?? null)),
    JSON.stringify(created),
  ]);
  const ids = (result.rows[0]?.ids ?? []) as number[];
  if (ids.length !== indexes.length)
    throw new Error(`taskInsertMany: inserted ${ids.length} of ${indexes.length} tasks`);
  for (const [i, index] of indexes.entries()) {
    call.outcomes[index] = { task: insertedTask(tasks[index]!, ids[i]!, created.state, undefined, now), created: true };
  }
  return [];
}

/** insertRound for any other batch (taskInsert): keys, tasks to start, inputs that differ in more than data. */
async function insertBatch(call: InsertCall, indexes: number[]): Promise<number[]> {
  const { tasks, now, startOn } = call;
  const starting = new Set(startOn?.indexes);
  const created = createdEvents(call, indexes);
  const alike = startOn === undefined && areAlike(tasks, indexes, created);
  const rowsParam = indexes.map((index, i) => {
    const t = tasks[index]!;
    return [
      t.queue,
      t.type,
      t.data ?? null,
      t.priority,
      t.maxAttempts,
      t.runAt.getTime(),
      t.key,
      t.timeoutMs,
      t.backoffMs,
      starting.has(index),
      alike ? null : created[i],
    ];
  });
  const shared = alike ? JSON.stringify(created[0]) : null;
  const result = await call.run("taskInsert", [JSON.stringify(rowsParam), now, startOn?.node ?? null, shared]);
  return matchInserted(call, indexes, (result.rows[0]?.rows ?? []) as InsertedRow[]);
}

/** The task.created data of each input at `indexes` (a batch mostly shares one runAt: formatted once). */
function createdEvents(call: InsertCall, indexes: number[]): CreatedEventData[] {
  const nowMs = call.now.getTime();
  let iso: [Date | null, string] = [null, ""];
  return indexes.map((index) => {
    const input = call.tasks[index]!;
    if (input.runAt !== iso[0]) iso = [input.runAt, input.runAt.toISOString()];
    return createdEventData(input, nowMs, iso[1]);
  });
}

/**
 * Whether the task.created events of the inputs at `indexes` are alike (one queue, one type, one state, one runAt):
 * taskInsert then logs them as one entry and gets their data once.
 */
function areAlike(tasks: TaskInsert[], indexes: number[], created: CreatedEventData[]): boolean {
  const [first] = created as [CreatedEventData];
  const queue = tasks[indexes[0]!]!.queue;
  return indexes.every(
    (index, i) =>
      tasks[index]!.queue === queue &&
      created[i]!.type === first.type &&
      created[i]!.state === first.state &&
      created[i]!.runAt === first.runAt,
  );
}

/**
 * Gives the inputs at `indexes` the rows taskInsert returned, and those it did not insert their keys' holders;
 * returns the inputs left to retry. Ids are drawn in input order (the statement takes them from the sequence while
 * it reads the array), so the new rows, sorted by id, line up with the inputs that were inserted: every input
 * without a key, and those whose key came back.
 */
async function matchInserted(call: InsertCall, indexes: number[], rows: InsertedRow[]): Promise<number[]> {
  const insertedKeys = new Set(rows.flatMap(([, key]) => (key === null ? [] : [key])));
  const conflicting: number[] = [];
  let next = 0;
  for (const index of indexes) {
    const input = call.tasks[index]!;
    if (input.key !== null && !insertedKeys.has(input.key)) {
      conflicting.push(index);
      continue;
    }
    const row = rows[next++];
    if (row === undefined || row[1] !== input.key)
      throw new Error("taskInsertMany: inserted rows do not line up with the input");
    const [id, , state] = row;
    call.outcomes[index] = { task: insertedTask(input, id, state, call.startOn, call.now), created: true };
  }
  return holdersOf(call, conflicting);
}

/**
 * The active tasks holding the keys of the inputs at `conflicting` become their outcomes; returns the inputs whose
 * holder finished meanwhile (to insert again).
 */
async function holdersOf(call: InsertCall, conflicting: number[]): Promise<number[]> {
  if (conflicting.length === 0) return [];
  const { tasks } = call;
  const found = await call.run("taskGetActiveByKeys", [conflicting.map((index) => tasks[index]!.key)]);
  const holders = new Map(found.rows.map((row) => [String(row.key), row]));
  return conflicting.filter((index) => {
    const holder = holders.get(tasks[index]!.key!);
    if (holder !== undefined) call.outcomes[index] = { task: rowToTask(holder), created: false };
    return holder === undefined;
  });
}

/** Whether the inputs at `indexes` differ in nothing but their data, and none has a key (taskInsertUniform). */
function isUniform(tasks: TaskInsert[], indexes: number[]): boolean {
  const first = tasks[indexes[0]!]!;
  const runAt = first.runAt.getTime();
  return indexes.every((index) => {
    const t = tasks[index]!;
    return (
      t.key === null &&
      t.queue === first.queue &&
      t.type === first.type &&
      t.priority === first.priority &&
      t.maxAttempts === first.maxAttempts &&
      t.runAt.getTime() === runAt &&
      t.timeoutMs === first.timeoutMs &&
      t.backoffMs === first.backoffMs
    );
  });
}

/** The data of the task.created event of `input` inserted at `nowMs`; `runAtIso` is its runAt as ISO text. */
function createdEventData(input: TaskInsert, nowMs: number, runAtIso: string): CreatedEventData {
  return { type: input.type, state: input.runAt.getTime() > nowMs ? "scheduled" : "queued", runAt: runAtIso };
}

/**
 * A task just inserted from `input`, as its row now reads: every column but id and state is the input's or a
 * default (data as its JSON round trip, like a read would give it). A task inserted running was started by the
 * insert, on the node it was asked to start on: attempt 1, started at `now`.
 */
function insertedTask(
  input: TaskInsert,
  id: number,
  state: TaskState,
  startOn: TaskStartOn | undefined,
  now: Date,
): Task {
  const started = state === "running";
  const node = started ? startOn!.node : null;
  return {
    id,
    queue: input.queue,
    type: input.type,
    data: JSON.parse(jsonParam(input.data)) as Json,
    priority: input.priority,
    state,
    attempt: started ? 1 : 0,
    maxAttempts: input.maxAttempts,
    stalls: 0,
    runAt: new Date(input.runAt.getTime()),
    key: input.key,
    progress: null,
    result: null,
    error: null,
    errors: [],
    timeoutMs: input.timeoutMs,
    backoffMs: input.backoffMs,
    node,
    createdAt: new Date(now.getTime()),
    startedAt: started ? new Date(now.getTime()) : null,
    finishedAt: null,
  };
}
