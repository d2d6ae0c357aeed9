/**
 * Task lists with bounded reads (task-listing.ts), on both stores, with a stretch of 10 ids so that a few dozen
 * tasks span many: paging by nextCursor gets every match once, in order, with no request reading more than the
 * stretch; time ranges find their ids by binary search and still filter by the exact times.
 */
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import type { Task } from "../core/task.ts";
import type { Store, TaskInsert, TaskListParams } from "../store/store.ts";
import { testNode, testStores, type StoreKind } from "./fixtures/test-node.ts";
import { listTasks, type TaskListQuery } from "./task-listing.ts";

const STRETCH = 10;
const T0 = Date.parse("2031-05-01T00:00:00.000Z");
const HOUR = 3_600_000;

function input(partial: Partial<TaskInsert>): TaskInsert {
  return {
    queue: "main",
    type: "work",
    data: null,
    priority: 0,
    maxAttempts: 1,
    runAt: new Date(T0 + 10 * HOUR),
    key: null,
    timeoutMs: null,
    backoffMs: null,
    ...partial,
  };
}

/** The node's store, with every taskList call it receives recorded. */
async function recordingStore(t: TestContext, kind: StoreKind): Promise<{ store: Store; calls: TaskListParams[] }> {
  const conveyor = testNode(t, kind);
  await conveyor.queues(); // opens and migrates the store
  const store = conveyor.store;
  const calls: TaskListParams[] = [];
  const taskList = store.taskList.bind(store);
  store.taskList = (params) => {
    calls.push(params);
    return taskList(params);
  };
  return { store, calls };
}

/** Every page of a list, following nextCursor to its end. */
async function allPages(store: Store, query: TaskListQuery): Promise<{ tasks: Task[]; pages: number }> {
  const tasks: Task[] = [];
  let pages = 0;
  let after: number | undefined;
  for (;;) {
    const page = await listTasks(store, { ...query, ...(after === undefined ? {} : { after }) }, STRETCH);
    pages++;
    tasks.push(...page.tasks);
    if (page.nextCursor === null) return { tasks, pages };
    assert.ok(pages < 100, "the list ends");
    after = page.nextCursor;
  }
}

/** 60 tasks, one hour apart in three batches of 20; every 7th in queue "rare", every 5th with a key. */
async function seed(store: Store): Promise<Task[]> {
  const tasks: Task[] = [];
  for (let batch = 0; batch < 3; batch++) {
    const inputs = Array.from({ length: 20 }, (_, k) => {
      const i = batch * 20 + k;
      return input({ ...(i % 7 === 0 ? { queue: "rare" } : {}), ...(i % 5 === 0 ? { key: `key-${i}` } : {}) });
    });
    const outcomes = await store.taskInsertMany({ tasks: inputs, now: new Date(T0 + batch * HOUR) });
    tasks.push(...outcomes.map((o) => o.task));
  }
  return tasks;
}

for (const kind of await testStores("task listing")) {
  describe(`task listing on ${kind}`, () => {
    test("a filter no index serves: short pages with a cursor, every match once, newest first, no read over the stretch", async (t) => {
      const { store, calls } = await recordingStore(t, kind);
      const tasks = await seed(store);
      const rare = tasks.filter((task) => task.queue === "rare").map((task) => task.id);

      const desc = await allPages(store, { queue: "rare", limit: 3 });
      assert.deepEqual(
        desc.tasks.map((task) => task.id),
        [...rare].reverse(),
      );
      assert.ok(desc.pages > rare.length / 3, `some pages were short (${desc.pages} pages for ${rare.length})`);
      for (const call of calls) {
        assert.ok(call.idMin !== undefined && call.idMax !== undefined, "every read is bounded");
        assert.ok(call.idMax - call.idMin + 1 <= STRETCH, `a read of ${call.idMin}..${call.idMax}`);
      }

      const asc = await allPages(store, { queue: "rare", order: "asc", limit: 2 });
      assert.deepEqual(
        asc.tasks.map((task) => task.id),
        rare,
      );
      const none = await allPages(store, { type: "never-used", limit: 5 });
      assert.deepEqual(none.tasks, []);
      assert.equal(none.pages, Math.ceil(tasks.length / STRETCH), "it looked through every stretch once");
    });

    test("lists an index serves fill their pages: no filter, a key, one state", async (t) => {
      const { store, calls } = await recordingStore(t, kind);
      const tasks = await seed(store);
      const first = await listTasks(store, { limit: 25 }, STRETCH);
      assert.equal(first.tasks.length, 25);
      assert.equal(first.nextCursor, first.tasks.at(-1)!.id);
      assert.deepEqual(
        first.tasks.map((task) => task.id),
        tasks
          .map((task) => task.id)
          .reverse()
          .slice(0, 25),
      );
      const keyed = await listTasks(store, { key: "key-5" }, STRETCH);
      assert.deepEqual(
        keyed.tasks.map((task) => task.key),
        ["key-5"],
      );
      assert.equal(keyed.nextCursor, null);
      const failed = await listTasks(store, { states: ["failed"] }, STRETCH);
      assert.deepEqual(failed, { tasks: [], nextCursor: null });
      assert.ok(
        calls.every((call) => call.idMin === undefined),
        "no stretch where an index serves",
      );
      // Two states: no index holds them in one order, so the list reads stretches.
      const badly = await allPages(store, { states: ["failed", "cancelled"] });
      assert.deepEqual(badly.tasks, []);
      assert.equal(badly.pages, Math.ceil(tasks.length / STRETCH));
    });

    test("a time range: its ids found by search, then exact times; an old window is not read through the new", async (t) => {
      const { store, calls } = await recordingStore(t, kind);
      const tasks = await seed(store);
      const middle = tasks.slice(20, 40).map((task) => task.id);

      const window = {
        createdAfter: new Date(T0 + HOUR - 1),
        createdBefore: new Date(T0 + HOUR + 1),
        limit: 100,
      };
      const found = await allPages(store, window);
      assert.deepEqual(
        found.tasks.map((task) => task.id),
        [...middle].reverse(),
      );
      assert.equal(found.pages, 2, "20 ids: two stretches, none of the newer batch");
      assert.ok(calls.every((call) => call.idMax! <= middle.at(-1)! && call.idMin! >= middle[0]!));

      const since = await allPages(store, { createdAfter: new Date(T0 + 2 * HOUR), order: "asc", limit: 100 });
      assert.deepEqual(
        since.tasks.map((task) => task.id),
        tasks.slice(40).map((task) => task.id),
      );
      const before = await allPages(store, { createdBefore: new Date(T0 + 1), limit: 100 });
      assert.deepEqual(
        before.tasks.map((task) => task.id),
        tasks
          .slice(0, 20)
          .map((task) => task.id)
          .reverse(),
      );
      const future = await listTasks(store, { createdAfter: new Date(T0 + 5 * HOUR) }, STRETCH);
      assert.deepEqual(future, { tasks: [], nextCursor: null });
    });

    test("a task whose node's clock ran behind (within the margin) is still in its window", async (t) => {
      const { store } = await recordingStore(t, kind);
      await seed(store);
      // A, then L from a node whose clock is 30 s behind, then B and others: L's time is out of order with its id.
      const at = T0 + 3 * HOUR;
      const insert = async (time: number) =>
        (await store.taskInsertMany({ tasks: [input({})], now: new Date(time) }))[0]!.task.id;
      await insert(at);
      const late = await insert(at - 30_000);
      await insert(at + 1);
      // More after B, so that the search's steps land on A, not on L, without the margin.
      await store.taskInsertMany({ tasks: Array.from({ length: 20 }, () => input({})), now: new Date(at + 2) });
      const found = await allPages(store, {
        createdAfter: new Date(at - 40_000),
        createdBefore: new Date(at - 20_000),
      });
      assert.deepEqual(
        found.tasks.map((task) => task.id),
        [late],
      );
    });

    test("an empty store: no page, no cursor", async (t) => {
      const { store } = await recordingStore(t, kind);
      assert.deepEqual(await listTasks(store, { queue: "any" }, STRETCH), { tasks: [], nextCursor: null });
      assert.deepEqual(await listTasks(store, {}, STRETCH), { tasks: [], nextCursor: null });
    });
  });
}
