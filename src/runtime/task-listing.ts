/**
 * Lists of tasks in which no request reads more than a bounded number of rows, whatever the size of the table.
 *
 * A list with no filter, by key, or by one state an index holds (running, failed or cancelled) reads its page
 * from an index and fills it. Any other filter (a queue, a type, a time range, the states most tasks are in)
 * has no index that every task's every transition would have to rewrite, so a request reads one stretch of at
 * most SCAN_IDS ids, newest first (or oldest, in ascending order), and answers the matches it found there, which
 * may be fewer than the limit, even none, with a `nextCursor` that says where the next stretch begins: a page is
 * short, never wrong, and the list is over only when `nextCursor` is null. (The dashboard keeps asking while its
 * table has room, and says how far it has looked.)
 *
 * A time range is turned into ids first, by a binary search over ids on the tasks' creation times (about twenty
 * reads of the primary key for a million tasks), so that an old window is found without reading what came after
 * it. Ids follow creation times except between nodes whose clocks differ: the search widens the range by
 * CLOCK_MARGIN_MS, and the exact times still filter the rows.
 */
import type { TaskState } from "../core/states.ts";
import type { Task } from "../core/task.ts";
import type { Store } from "../store/store.ts";

/** The most ids one request of a filtered list reads. */
export const SCAN_IDS = 20_000;
/** How far two nodes' clocks may disagree without a time filter missing a task near its bounds. */
export const CLOCK_MARGIN_MS = 60_000;
/** States an index holds in id order (or, for running, few enough to sort): a list of them alone fills its page. */
const INDEXED_STATES: ReadonlySet<TaskState> = new Set(["running", "failed", "cancelled"]);

export type TaskListQuery = {
  queue?: string;
  states?: TaskState[];
  type?: string;
  key?: string;
  /** Only tasks created at or after this time. */
  createdAfter?: Date;
  /** Only tasks created before this time. */
  createdBefore?: Date;
  /** Cursor from a previous page. */
  after?: number;
  limit?: number;
  order?: "asc" | "desc";
};

/** A page of tasks; more may match past `nextCursor` (even when the page is short), none when it is null. */
export type TaskPage = { tasks: Task[]; nextCursor: number | null };

export async function listTasks(store: Store, query: TaskListQuery, scanIds = SCAN_IDS): Promise<TaskPage> {
  const { limit = 50, order = "desc", after, ...filter } = query;
  if (servedByIndex(query)) {
    const tasks = await store.taskList({ ...filter, ...(after === undefined ? {} : { after }), limit, order });
    return { tasks, nextCursor: tasks.length === limit ? tasks.at(-1)!.id : null };
  }
  const range = await idRange(store, query);
  if (range === null) return { tasks: [], nextCursor: null };
  const { lo, hi } = range;
  // The stretch this request reads: scanIds ids from the cursor, or from the end the order starts at.
  let from: number;
  let to: number;
  if (order === "desc") {
    to = Math.min(hi, after === undefined ? hi : after - 1);
    from = Math.max(lo, to - scanIds + 1);
  } else {
    from = Math.max(lo, after === undefined ? lo : after + 1);
    to = Math.min(hi, from + scanIds - 1);
  }
  if (from > to) return { tasks: [], nextCursor: null };
  const tasks = await store.taskList({ ...filter, idMin: from, idMax: to, limit, order });
  if (tasks.length === limit) return { tasks, nextCursor: tasks.at(-1)!.id };
  // The stretch held fewer: the next one starts past it, if any ids are left.
  if (order === "desc") return { tasks, nextCursor: from > lo ? from : null };
  return { tasks, nextCursor: to < hi ? to : null };
}

function servedByIndex(query: TaskListQuery): boolean {
  if (query.queue !== undefined || query.type !== undefined) return false;
  if (query.createdAfter !== undefined || query.createdBefore !== undefined) return false;
  if (query.key !== undefined || query.states === undefined) return true;
  // One state: its index holds it in id order. Several would need a merge of their rows the stores do not do.
  return query.states.length === 1 && INDEXED_STATES.has(query.states[0]!);
}

/** The ids the query can match (both ends included), or null when none can. */
async function idRange(store: Store, query: TaskListQuery): Promise<{ lo: number; hi: number } | null> {
  const ids = await store.taskIdRange();
  if (ids === null) return null;
  let { min: lo, max: hi } = ids;
  if (query.createdAfter !== undefined) {
    lo = await firstIdCreatedFrom(store, ids, query.createdAfter.getTime() - CLOCK_MARGIN_MS);
  }
  if (query.createdBefore !== undefined) {
    hi = (await firstIdCreatedFrom(store, ids, query.createdBefore.getTime() + CLOCK_MARGIN_MS)) - 1;
  }
  return lo > hi ? null : { lo, hi };
}

/**
 * The smallest id m in min..max+1 such that the first task with an id of m or more was created at `at` or later
 * (max+1 when none was): a binary search, as creation times grow with ids.
 */
async function firstIdCreatedFrom(store: Store, ids: { min: number; max: number }, at: number): Promise<number> {
  let [a, b] = [ids.min, ids.max + 1];
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    const first = await store.taskCreatedFrom({ id: mid });
    if (first === null || first.createdAt.getTime() >= at) b = mid;
    else a = first.id + 1;
  }
  return a;
}
