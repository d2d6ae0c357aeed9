/**
 * The live stream is gap-free under concurrent writers on PostgreSQL: three nodes on one schema (each its own store,
 * pool and LISTEN/NOTIFY bus, their backstop poll out of the way) publish to application channels and enqueue
 * tasks from a dozen concurrent loops, and run those tasks (claims and batched completions write too), while
 * in-process subscribers follow the whole log (`tasks`, `nodes` and every application channel written to): one
 * live from the start, one that joins mid-burst from the start's position (its gap replayed from the store while
 * the writers go on, then live with no seam). Each must get every offset of the log exactly once, in order: the
 * offsets `store.eventList` reads afterwards, which are dense. And every task's events are in the order of its
 * life (created, started, completed).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { LogEvent } from "../src/core/task.ts";
import type { LivePosition } from "../src/runtime/live-feed.ts";
import { Conveyor } from "../src/runtime/conveyor.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "./support/postgres.ts";

const NODES = 3;
const CHANNELS = ["tasks", "nodes", "stats", ...Array.from({ length: NODES }, (_, i) => `mix:${i}`)];
/** Events the first subscriber gets before the second joins, and before the writers stop. */
const JOIN_AFTER = 3000;
const STOP_AFTER = 10_000;
const WAIT_MS = 30_000;

/** A subscriber's events, and waits on them. */
class Collector {
  readonly events: LogEvent[] = [];
  #waiters: { test: () => boolean; resolve: () => void }[] = [];

  readonly listener = (event: LogEvent): void => {
    this.events.push(event);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test()) return true;
      waiter.resolve();
      return false;
    });
  };

  get offsets(): number[] {
    return this.events.map((event) => event.offset);
  }

  until(what: string, test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    this.#waiters.push({
      test,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    });
    return promise;
  }

  reached(offset: number): Promise<void> {
    return this.until(`offset ${offset} (at ${this.events.at(-1)?.offset})`, () => {
      const last = this.events.at(-1);
      return last !== undefined && last.offset >= offset;
    });
  }
}

test("on PostgreSQL, live subscribers see every offset once, in order, under a dozen concurrent writers", async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = freshSchema("live_writers");
  const nodes: Conveyor[] = [];
  t.after(async () => {
    for (const node of nodes) await node.stop();
    await dropSchema(schema);
  });
  for (let i = 0; i < NODES; i++) {
    const node = new Conveyor({
      database: postgresUrl(),
      schema,
      nodeName: `writer-${i}`,
      pollIntervalMs: 60_000,
      shutdownGraceMs: 500,
      logger: pino({ level: "silent" }),
    });
    node.define("echo", (data) => data);
    await node.start();
    nodes.push(node);
  }
  const [first, , last] = nodes as [Conveyor, Conveyor, Conveyor];

  const from: LivePosition = await first.live.position();
  const live = new Collector();
  const liveSubscription = await first.subscribe(CHANNELS, { since: from }, live.listener);
  t.after(() => liveSubscription.close());
  assert.equal(liveSubscription.recovered, true);

  let writing = true;
  const ids = new Set<number>();
  const loops: Promise<void>[] = [];
  for (const [n, node] of nodes.entries()) {
    for (let w = 0; w < 2; w++) {
      loops.push(
        (async () => {
          for (let i = 0; writing; i++) await node.publish(`mix:${n}`, { w, i });
        })(),
      );
    }
    loops.push(
      (async () => {
        while (writing) ids.add((await node.enqueue("echo", { n })).id);
      })(),
    );
    loops.push(
      (async () => {
        while (writing) {
          const outcomes = await node.enqueueMany(Array.from({ length: 5 }, (_, k) => ({ type: "echo", data: { k } })));
          for (const outcome of outcomes) ids.add(outcome.task.id);
        }
      })(),
    );
  }
  const written = Promise.all(loops);

  let joiner: Collector;
  try {
    // Mid-burst, a subscriber on another node asks for everything since the first one's start.
    await live.until(`${JOIN_AFTER} events`, () => live.events.length >= JOIN_AFTER);
    joiner = new Collector();
    const joined = await last.subscribe(CHANNELS, { since: from }, joiner.listener);
    t.after(() => joined.close());
    assert.equal(joined.recovered, true, `joined mid-burst: ${joined.reason}`);
    await live.until(`${STOP_AFTER} events`, () => live.events.length >= STOP_AFTER);
  } finally {
    writing = false;
    await written;
  }

  // Every task has run: its completion is in the stream. Then both subscribers catch up with the whole log.
  const completed = new Set<number>();
  let scanned = 0;
  await live.until(`${ids.size} tasks completed`, () => {
    for (; scanned < live.events.length; scanned++) {
      const event = live.events[scanned]!;
      if (event.type === "task.completed") completed.add(event.taskId);
    }
    return completed.size >= ids.size;
  });
  const lastOffset = await first.store.eventLastOffset();
  await Promise.all([live.reached(lastOffset), joiner.reached(lastOffset)]);

  const log: number[] = [];
  for (;;) {
    const page = await first.store.eventList({ after: log.at(-1) ?? from.offset, limit: 5000 });
    log.push(...page.map((event) => event.offset));
    if (page.length < 5000) break;
  }
  assert.deepEqual(
    log,
    Array.from({ length: lastOffset - from.offset }, (_, i) => from.offset + 1 + i),
    "the log's offsets are dense",
  );
  assert.deepEqual(live.offsets, log, "the live subscriber got every offset once, in order");
  assert.deepEqual(joiner.offsets, log, "the one that joined mid-burst too");

  // Each task's events in the order of its life.
  const lives = new Map<number, string[]>();
  for (const event of live.events) {
    if (event.channel !== null) continue;
    lives.set(event.taskId, [...(lives.get(event.taskId) ?? []), event.type]);
  }
  assert.equal(lives.size, ids.size);
  for (const [id, names] of lives) {
    assert.deepEqual(names, ["task.created", "task.started", "task.completed"], `task ${id}`);
  }
  t.diagnostic(`${log.length} events, ${ids.size} tasks, ${loops.length} writers on ${NODES} nodes`);
});
