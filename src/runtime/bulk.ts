/**
 * Actions on many tasks at once (the dashboard's "stop / rerun / delete the selected, or all matching"): on a list
 * of ids in the request itself, or on every task matching a filter as a task of its own (`conveyor.bulk`, on the
 * `conveyor` queue), which walks the matching tasks page by page in id order, reports its progress (done of the
 * total the counts table gives, when the filter is a queue and states) and returns what it did. A task the action
 * does not apply to (a finished task to cancel, an active one to delete) is skipped with the reason.
 */
import { ConflictError, NotFoundError, ValidationError } from "../core/errors.ts";
import type { TaskState } from "../core/states.ts";
import type { Json } from "../core/task.ts";
import type { TaskContext } from "./handler.ts";

export const BULK_TYPE = "conveyor.bulk";
export const BULK_QUEUE = "conveyor";
export const BULK_ACTIONS = ["cancel", "rerun", "delete"] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];
/** Most ids one request acts on; more go through a filter (a conveyor.bulk task). */
export const MAX_BULK_IDS = 1000;
const PAGE = 500;

export type BulkFilter = {
  queue?: string;
  states?: TaskState[];
  type?: string;
  key?: string;
  createdAfter?: string;
  createdBefore?: string;
};

export type BulkOutcome = { done: number[]; skipped: { id: number; reason: string }[] };

/** What bulk actions need of the node: its one-task operations and its listing. */
export type BulkTarget = {
  cancel(id: number, reason?: string): Promise<{ state: TaskState }>;
  rerun(id: number): Promise<unknown>;
  deleteFinished(ids: number[]): Promise<number[]>;
  list(query: {
    queue?: string;
    states?: TaskState[];
    type?: string;
    key?: string;
    createdAfter?: Date;
    createdBefore?: Date;
    after?: number;
    limit: number;
    order: "asc";
  }): Promise<{ tasks: { id: number }[]; nextCursor: number | null }>;
  queueCounts(): Promise<{ queue: string; counts: Record<TaskState, number> }[]>;
};

/** Applies `action` to each id, in order; returns what was done and what was skipped (and why). */
export async function applyToIds(target: BulkTarget, action: BulkAction, ids: number[]): Promise<BulkOutcome> {
  const outcome: BulkOutcome = { done: [], skipped: [] };
  if (action === "delete") {
    const deleted = new Set(await target.deleteFinished(ids));
    for (const id of ids) {
      if (deleted.has(id)) outcome.done.push(id);
      else outcome.skipped.push({ id, reason: "not finished (cancel it first), or no such task" });
    }
    return outcome;
  }
  for (const id of ids) {
    try {
      if (action === "cancel") {
        const before = await target.cancel(id, "cancelled from a bulk action");
        if (before.state === "cancelled") outcome.done.push(id);
        else outcome.skipped.push({ id, reason: `already ${before.state}` });
      } else {
        await target.rerun(id);
        outcome.done.push(id);
      }
    } catch (error) {
      if (!(error instanceof NotFoundError || error instanceof ConflictError)) throw error;
      outcome.skipped.push({ id, reason: error.message });
    }
  }
  return outcome;
}

/** The handler of conveyor.bulk: the action on every task matching the filter, with progress. */
export function bulkHandler(target: () => BulkTarget) {
  return async (data: { action: BulkAction; filter: BulkFilter }, ctx: TaskContext): Promise<Json> => {
    const { action, filter } = data;
    const query = {
      ...(filter.queue === undefined ? {} : { queue: filter.queue }),
      ...(filter.states === undefined ? {} : { states: filter.states }),
      ...(filter.type === undefined ? {} : { type: filter.type }),
      ...(filter.key === undefined ? {} : { key: filter.key }),
      ...(filter.createdAfter === undefined ? {} : { createdAfter: new Date(filter.createdAfter) }),
      ...(filter.createdBefore === undefined ? {} : { createdBefore: new Date(filter.createdBefore) }),
    };
    const total = await estimateTotal(target(), filter);
    let done = 0;
    let skipped = 0;
    let after: number | undefined;
    for (;;) {
      if (ctx.signal.aborted) break;
      // A page may be short, even empty, with more to come: a filtered list reads a bounded stretch of ids at a time.
      const page = await target().list({
        ...query,
        ...(after === undefined ? {} : { after }),
        limit: PAGE,
        order: "asc",
      });
      if (page.tasks.length > 0) {
        const outcome = await applyToIds(
          target(),
          action,
          page.tasks.map((t) => t.id),
        );
        done += outcome.done.length;
        skipped += outcome.skipped.length;
        const percent = total === null ? 0 : Math.min(99, (100 * (done + skipped)) / Math.max(1, total));
        ctx.progress(percent, { action, done, skipped, ...(total === null ? {} : { total }) });
      }
      if (page.nextCursor === null) break;
      after = page.nextCursor;
    }
    ctx.progress(100, { action, done, skipped });
    return { action, done, skipped };
  };
}

/** The tasks a filter matches, from the counts table, when it names only a queue and states; else null. */
async function estimateTotal(target: BulkTarget, filter: BulkFilter): Promise<number | null> {
  if (filter.type !== undefined || filter.key !== undefined || filter.createdAfter !== undefined) return null;
  if (filter.createdBefore !== undefined) return null;
  const states = filter.states ?? null;
  let total = 0;
  for (const { queue, counts } of await target.queueCounts()) {
    if (filter.queue !== undefined && queue !== filter.queue) continue;
    for (const [state, n] of Object.entries(counts))
      if (states === null || states.includes(state as TaskState)) total += n;
  }
  return total;
}

/** Checks a bulk request's action; throws a ValidationError naming the field. */
export function checkAction(action: unknown): BulkAction {
  if (!BULK_ACTIONS.includes(action as BulkAction)) {
    throw new ValidationError(`action must be one of ${BULK_ACTIONS.join(", ")}`, [
      { in: "body", field: "action", message: `must be one of ${BULK_ACTIONS.join(", ")}` },
    ]);
  }
  return action as BulkAction;
}
