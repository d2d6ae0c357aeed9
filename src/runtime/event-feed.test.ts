/**
 * EventFeed, on a real SQLite store and the in-process bus: a listener gets every event committed after its
 * subscribe() resolved and none from before; the feed reads the store only while someone listens; it reads when the
 * bus rings (the backstop poll is a minute here, so a test passes only through the ring) or, with no ring (a write by
 * another process), at its poll; a backlog larger than one read comes in order, in several reads.
 */
import assert from "node:assert/strict";
import { after, test, type TestContext } from "node:test";
import { LocalBus } from "../bus/local-bus.ts";
import { EventFeed, type EventListener } from "./event-feed.ts";
import { deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { addTasks, sqliteStore } from "./fixtures/sqlite-store.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer or handle behind"));

const MINUTE = 60_000;

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Runs `feed` until the test ends. */
function run(t: TestContext, feed: EventFeed): void {
  const controller = new AbortController();
  const running = feed.run(controller.signal);
  t.after(() => (controller.abort(), running));
}

type FeedEvent = Parameters<EventListener>[0];

/** A listener that collects events and resolves `until(n)` once it has n of them. */
function collector() {
  const events: FeedEvent[] = [];
  let waiting: { n: number; resolve: () => void } | null = null;
  const listener = (event: FeedEvent) => {
    events.push(event);
    if (waiting !== null && events.length >= waiting.n) waiting.resolve();
  };
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      if (events.length >= n) resolve();
      else waiting = { n, resolve };
    });
  return { events, listener, until };
}

test("a listener gets the events committed after subscribe() resolved, and none from before", async (t) => {
  const store = await sqliteStore(t);
  const bus = new LocalBus();
  const feed = new EventFeed(store, bus, MINUTE);
  run(t, feed);
  const [before] = await addTasks(store, [{ type: "before" }]);
  const { events, listener, until } = collector();
  const unsubscribe = await feed.subscribe(listener);
  const [later] = await addTasks(store, [{ type: "later" }]);
  bus.publish("events", {});
  await until(1);
  unsubscribe();
  assert.deepEqual(
    events.map((event) => [event.type, event.taskId]),
    [["task.created", later!.id]],
  );
  assert.ok(before!.id !== later!.id);
});

test("it reads the store only while someone listens", async (t) => {
  const store = await sqliteStore(t);
  const bus = new LocalBus();
  const reads: number[] = [];
  const list = store.eventList.bind(store);
  store.eventList = (params) => (reads.push(params.after), list(params));
  const feed = new EventFeed(store, bus, MINUTE);
  run(t, feed);
  await addTasks(store, [{ type: "a" }]);
  bus.publish("events", {});
  await turns();
  assert.deepEqual(reads, [], "rung with nobody listening: no read");

  const { events, listener, until } = collector();
  const unsubscribe = await feed.subscribe(listener);
  await addTasks(store, [{ type: "b" }]);
  bus.publish("events", {});
  await until(1);
  assert.equal(reads.length, 1, "one read for one ring");
  unsubscribe();

  const readsWhileListening = reads.length;
  await addTasks(store, [{ type: "c" }]);
  bus.publish("events", {});
  await turns();
  assert.equal(reads.length, readsWhileListening, "no read once the last listener left");
  assert.deepEqual(
    events.map((event) => event.type),
    ["task.created"],
  );
});

test("listeners that subscribe together share one starting point; a late one starts where the feed is", async (t) => {
  const store = await sqliteStore(t);
  const bus = new LocalBus();
  let startingReads = 0;
  const last = store.eventLastOffset.bind(store);
  store.eventLastOffset = () => (startingReads++, last());
  const feed = new EventFeed(store, bus, MINUTE);
  run(t, feed);
  const first = collector();
  const second = collector();
  await Promise.all([feed.subscribe(first.listener), feed.subscribe(second.listener)]);
  assert.equal(startingReads, 1, "one read of the last offset for both");
  const [task] = await addTasks(store, [{ type: "x" }]);
  bus.publish("events", {});
  await Promise.all([first.until(1), second.until(1)]);
  const third = collector();
  await feed.subscribe(third.listener);
  assert.equal(startingReads, 1, "a listener joining a running feed needs no read of its own");
  const [next] = await addTasks(store, [{ type: "y" }]);
  bus.publish("events", {});
  await Promise.all([first.until(2), second.until(2), third.until(1)]);
  for (const { events } of [first, second])
    assert.deepEqual(
      events.map((event) => event.taskId),
      [task!.id, next!.id],
    );
  assert.deepEqual(
    third.events.map((event) => event.taskId),
    [next!.id],
  );
});

test("with no ring (another process wrote), the backstop poll finds the events", async (t) => {
  const store = await sqliteStore(t);
  const feed = new EventFeed(store, new LocalBus(), 20);
  run(t, feed);
  const { events, listener, until } = collector();
  const unsubscribe = await feed.subscribe(listener);
  t.after(unsubscribe);
  // Another store on the same file, as another process would write: nothing rings this feed's bus.
  const other = await sqliteStore(t, store.path);
  const [task] = await addTasks(other, [{ type: "elsewhere" }]);
  await until(1);
  assert.equal(events[0]?.taskId, task!.id);
});

test("a backlog larger than one read comes whole and in order, in several reads", async (t) => {
  const store = await sqliteStore(t);
  const bus = new LocalBus();
  let reads = 0;
  const list = store.eventList.bind(store);
  store.eventList = (params) => (reads++, list(params));
  const feed = new EventFeed(store, bus, MINUTE);
  run(t, feed);
  const { events, listener, until } = collector();
  const unsubscribe = await feed.subscribe(listener);
  t.after(unsubscribe);
  const tasks = await addTasks(
    store,
    Array.from({ length: 2500 }, (_, i) => ({ type: "bulk", data: i })),
  );
  bus.publish("events", {});
  await until(2500);
  assert.deepEqual(
    events.map((event) => event.taskId),
    tasks.map((task) => task.id),
  );
  const offsets = events.map((event) => event.offset);
  assert.ok(
    offsets.every((offset, i) => i === 0 || offset > offsets[i - 1]!),
    "offsets strictly increase",
  );
  assert.ok(reads >= 3, `${reads} reads of at most 1000 events each`);
  const done = deferred();
  setImmediate(() => done.resolve());
  await done.promise;
  assert.equal(events.length, 2500, "nothing handed out twice");
});
