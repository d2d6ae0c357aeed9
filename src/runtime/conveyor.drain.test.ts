/**
 * A started node keeps its slots full whatever way a backlog reaches it: enqueued by the node itself (what the
 * HTTP API does), or waiting in a paused queue that is resumed. On both stores, with the backstop poll out of the
 * way (a minute), so that a drain leaning on it cannot finish in time. On PostgreSQL the server's own counts say
 * how many task rows it read: a claim whose plan was made while the table was empty read every queued task each
 * time (20× slower than the benchmark's drain, issue 11).
 */
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import pino from "pino";
import { PostgresBus } from "../bus/postgres-bus.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { Conveyor } from "./conveyor.ts";
import type { ConveyorOptions } from "./options.ts";
import { deferred, tempDatabase } from "./fixtures/runtime-handlers.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres, tableReads } from "../../test/support/postgres.ts";

const N = 4000;
const BATCH = 500;
const CONCURRENCY = 20;

type Fixture = {
  options: () => ConveyorOptions;
  /** Another node's options on the same store: its own connections (and bus), as another process would have. */
  producer: () => ConveyorOptions;
  close: () => Promise<void>;
  reads?: () => Promise<{ rows: number; seqScans: number }>;
};

const stores: Record<string, () => Fixture> = {
  sqlite: () => {
    const database = tempDatabase();
    return { options: () => ({ database }), producer: () => ({ database }), close: async () => {} };
  },
  postgres: () => {
    const schema = freshSchema("drain");
    // One connection: every claim runs on the connection whose plans the node's first, empty claim made.
    const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 1 });
    const bus = new PostgresBus({ connectionString: postgresUrl(), channel: schema });
    const others: { close(): Promise<void> }[] = [];
    return {
      options: () => ({ store, bus }),
      producer: () => {
        const own = {
          store: new PostgresStore({ connectionString: postgresUrl(), schema }),
          bus: new PostgresBus({ connectionString: postgresUrl(), channel: schema }),
        };
        others.push(own.bus, own.store);
        return own;
      },
      close: async () => {
        for (const other of others) await other.close();
        await bus.close();
        await store.close();
      },
      reads: async () => {
        const reads = await tableReads(schema, "tasks");
        await dropSchema(schema);
        return reads;
      },
    };
  },
};

for (const [storeName, makeFixture] of Object.entries(stores)) {
  describe(`a started node on ${storeName} drains a backlog with its slots full`, () => {
    async function drain(t: TestContext, fill: (conveyor: Conveyor, fixture: Fixture) => Promise<void>): Promise<void> {
      if (storeName === "postgres" && !(await requirePostgres(t))) return;
      const fixture = makeFixture();
      const conveyor = new Conveyor({
        ...fixture.options(),
        concurrency: CONCURRENCY,
        pollIntervalMs: 60_000,
        logger: pino({ level: "silent" }),
      });
      const done = deferred();
      let ran = 0;
      conveyor.define("noop", () => {
        if (++ran === N) done.resolve();
      });
      let claims = 0;
      let claimed = 0;
      const claim = conveyor.store.taskClaim.bind(conveyor.store);
      conveyor.store.taskClaim = async (params) => {
        const tasks = await claim(params);
        claims++;
        claimed += tasks.length;
        return tasks;
      };
      try {
        await conveyor.start();
        await fill(conveyor, fixture);
        await done.promise;
        const queues = await conveyor.queues();
        assert.equal(queues.find((q) => q.queue === "default")?.counts.queued, 0);
      } finally {
        await conveyor.stop();
        await fixture.close();
      }
      assert.equal(ran, N, "every task ran once");
      // Every task is claimed or started by its insert; a claim may come back short only when the queue ran dry.
      assert.ok(claims <= 2 * Math.ceil(claimed / CONCURRENCY) + 20, `${claims} claims took ${claimed} tasks`);
      if (fixture.reads !== undefined) {
        const reads = await fixture.reads();
        // A task is read a few times (claimed, completed, its count and event rows); a plan made on the empty
        // table reads thousands of queued rows per claim.
        assert.ok(reads.rows <= 20 * N, `the server read ${reads.rows} task rows to drain ${N} tasks`);
      }
    }

    test("that it enqueues itself, in batches", { timeout: 60_000 }, async (t) => {
      await drain(t, async (conveyor) => {
        for (let i = 0; i < N / BATCH; i++)
          await conveyor.enqueueMany(Array.from({ length: BATCH }, () => ({ type: "noop" })));
      });
    });

    test("that another node enqueues (its own connections, never started)", { timeout: 60_000 }, async (t) => {
      await drain(t, async (_conveyor, fixture) => {
        const producer = new Conveyor({ ...fixture.producer(), logger: pino({ level: "silent" }) });
        try {
          for (let i = 0; i < N / BATCH; i++)
            await producer.enqueueMany(Array.from({ length: BATCH }, () => ({ type: "noop" })));
        } finally {
          await producer.stop();
        }
      });
    });

    test("waiting in a paused queue that is resumed", { timeout: 60_000 }, async (t) => {
      await drain(t, async (conveyor) => {
        await conveyor.pauseQueue("default");
        for (let i = 0; i < N / BATCH; i++)
          await conveyor.enqueueMany(Array.from({ length: BATCH }, () => ({ type: "noop" })));
        await conveyor.resumeQueue("default");
      });
    });
  });
}
