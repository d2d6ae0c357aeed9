/**
 * What the conformance cases share: a fixed clock (T0, at), a task input with defaults, a few steps that assert as
 * they go (insert a new task, claim one, read one that must exist), and StoreTest, the way a case gets a store.
 */
import assert from "node:assert/strict";
import type { ErrorRecord } from "../../core/errors.ts";
import type { Task, LogEventType } from "../../core/task.ts";
import type { Store, TaskInsert } from "../store.ts";

/** Declares one test case that runs `body` on a fresh store of the driver under test (closed afterwards). */
export type StoreTest = (title: string, body: (store: Store) => Promise<void>) => void;

/** A fixed base time, far from the real clock, so a driver that reads the clock instead of `now` shows it. */
export const T0 = new Date("2030-01-01T00:00:00.000Z");
/** T0 plus `seconds`. */
export function at(seconds: number): Date {
  return new Date(T0.getTime() + seconds * 1000);
}

/** A task input with defaults (queue "default", type "t", due at T0, no key), `partial` overriding them. */
export function taskInput(partial: Partial<TaskInsert> = {}): TaskInsert {
  return {
    queue: "default",
    type: "t",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: T0,
    key: null,
    timeoutMs: null,
    backoffMs: null,
    ...partial,
  };
}

/** Insert one task that must be new; returns it. */
export async function insert(store: Store, partial: Partial<TaskInsert> = {}, now: Date = T0): Promise<Task> {
  const outcomes = await store.taskInsertMany({ tasks: [taskInput(partial)], now });
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0]!.created, true);
  return outcomes[0]!.task;
}

/** Insert one task in its own queue and claim it; returns the running task. */
export async function running(
  store: Store,
  partial: Partial<TaskInsert> & { queue: string },
  node = "n1",
  now: Date = at(1),
): Promise<Task> {
  const task = await insert(store, partial);
  const claimed = await store.taskClaim({ queue: partial.queue, types: [partial.type ?? "t"], node, limit: 1, now });
  assert.deepEqual(
    claimed.map((t) => t.id),
    [task.id],
    "the helper's queue must hold only this task",
  );
  return claimed[0]!;
}

/** The task with id `id`, which must exist. */
export async function mustGet(store: Store, id: number): Promise<Task> {
  const task = await store.taskGet({ id });
  assert.ok(task, `task ${id} exists`);
  return task;
}

/** Every task of the store, in id order. */
export async function allTasks(store: Store): Promise<Task[]> {
  return store.taskList({ limit: 10_000, order: "asc" });
}

/** The ids of `tasks`, ascending. */
export function sortedIds(tasks: { id: number }[]): number[] {
  return tasks.map((t) => t.id).sort((a, b) => a - b);
}

/** An error record as a node would report it for attempt `attempt` at `when`. */
export function errorRecord(message: string, attempt: number, when: Date): ErrorRecord {
  return {
    name: "Error",
    message,
    stack: `Error: ${message}\n    at handler (task.ts:1:1)`,
    attempt,
    at: when.toISOString(),
  };
}

/** The types of the events in the log, of task `taskId` only when given, in offset order. */
export async function eventTypes(store: Store, taskId?: number): Promise<LogEventType[]> {
  const events = await store.eventList(
    taskId === undefined ? { after: 0, limit: 10_000 } : { after: 0, limit: 10_000, taskId },
  );
  return events.map((e) => e.type);
}
