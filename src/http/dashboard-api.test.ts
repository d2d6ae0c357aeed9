/**
 * The server side of the dashboard, over HTTP on a real node (SQLite, and PostgreSQL for what the store does):
 * statistics per bucket, a queue's concurrency changed live, bulk actions on ids and on a filter, listing by
 * creation time, failure injection (refused unless allowed), and the read-only token's scope. Bad inputs are 400s
 * that change nothing.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { PostgresBus } from "../bus/postgres-bus.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { Conveyor } from "../runtime/conveyor.ts";
import type { ConveyorOptions } from "../runtime/options.ts";
import { buildServer } from "./server.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "../../test/support/postgres.ts";

const WRITE = "write-token-of-the-dashboard-tests";
const READ = "read-token-of-the-dashboard-tests";

type Node = {
  conveyor: Conveyor;
  app: FastifyInstance;
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>;
};

type Gate = { promise: Promise<void>; open: () => void };
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const STORES: Record<
  string,
  (t: TestContext) => Promise<{ options: ConveyorOptions; close: () => Promise<void> } | null>
> = {
  sqlite: async () => ({
    options: { database: join(mkdtempSync(join(tmpdir(), "conveyor-dash-")), "c.db") },
    close: async () => {},
  }),
  postgres: async (t) => {
    if (!(await requirePostgres(t))) return null;
    const schema = freshSchema("dash");
    const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 4 });
    const bus = new PostgresBus({ connectionString: postgresUrl(), channel: schema });
    return {
      options: { store, bus },
      close: async () => {
        await bus.close();
        await store.close();
        await dropSchema(schema);
      },
    };
  },
};

for (const [storeName, openStore] of Object.entries(STORES)) {
  describe(`dashboard API on ${storeName}`, () => {
    async function startNode(
      t: TestContext,
      define: (conveyor: Conveyor) => void,
      options: { tokens?: boolean; conveyor?: ConveyorOptions } = {},
    ): Promise<Node | null> {
      const store = await openStore(t);
      if (store === null) return null;
      const conveyor = new Conveyor({
        ...store.options,
        logger: pino({ level: "silent" }),
        shutdownGraceMs: 100,
        pollIntervalMs: 60_000,
        ...options.conveyor,
      });
      define(conveyor);
      const app = await buildServer({
        conveyor,
        ...(options.tokens === true ? { token: WRITE, readToken: READ } : {}),
      });
      await conveyor.start();
      const base = await app.listen({ port: 0, host: "127.0.0.1" });
      t.after(async () => {
        await app.close();
        await conveyor.stop();
        await store.close();
      });
      const call = async (
        method: string,
        path: string,
        body?: unknown,
        token: string | undefined = options.tokens ? WRITE : undefined,
      ) => {
        const headers: Record<string, string> = {};
        if (body !== undefined) headers["content-type"] = "application/json";
        if (token !== undefined) headers.authorization = `Bearer ${token}`;
        const response = await fetch(`${base}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        return { status: response.status, body: text === "" ? null : JSON.parse(text) };
      };
      return { conveyor, app, call };
    }

    test("statistics: completions, failures and retries per bucket, with timings, from the store", async (t) => {
      const node = await startNode(t, (conveyor) => {
        conveyor.define("ok", () => 1);
        conveyor.define(
          "bad",
          () => {
            throw new Error("no");
          },
          { maxAttempts: 2, backoff: { baseMs: 1 } },
        );
      });
      if (node === null) return;
      const { conveyor } = node;
      const failures = conveyor.events.next("task:failed");
      for (let i = 0; i < 5; i++) await conveyor.enqueue("ok");
      await conveyor.enqueue("bad");
      await failures;
      // The bucket is written when it closes (every 5 s): wait for its stats event rather than the clock.
      const written = new Promise<void>((resolve) => {
        void conveyor.subscribe(["stats"], {}, (event) => {
          const data = event.data as { completed: number; failed: number };
          if (data.failed > 0 || data.completed > 0) resolve();
        });
      });
      await written;
      const { status, body } = await node.call("GET", "/api/stats?window=300");
      assert.equal(status, 200);
      assert.equal(body.bucketSeconds, 5);
      const total = (field: "completed" | "failed" | "retried") =>
        body.buckets.reduce((sum: number, b: Record<string, number>) => sum + b[field]!, 0);
      assert.deepEqual([total("completed"), total("failed"), total("retried")], [5, 1, 1]);
      const timed = body.buckets.find((b: { runMs: unknown }) => b.runMs !== null);
      assert.ok(timed.runMs.p50 <= timed.runMs.p99, "percentiles in order");
      assert.equal(typeof body.position.offset, "number");
      assert.equal((await node.call("GET", "/api/stats?window=5")).status, 400, "a window under a minute");
    });

    test("a queue's concurrency changes live: a raise starts waiting tasks at once, without a restart", async (t) => {
      const release = gate();
      let running = 0;
      let most = 0;
      const node = await startNode(
        t,
        (conveyor) =>
          conveyor.define("hold", async () => {
            most = Math.max(most, ++running);
            await release.promise;
            running--;
          }),
        { conveyor: { concurrency: 2 } },
      );
      if (node === null) return;
      const { conveyor } = node;
      const started = (n: number) => {
        let seen = 0;
        return new Promise<void>((resolve) => {
          const listener = () => {
            if (++seen === n) {
              conveyor.events.off("task:started", listener);
              resolve();
            }
          };
          conveyor.events.on("task:started", listener);
        });
      };
      const firstTwo = started(2);
      await conveyor.enqueueMany(Array.from({ length: 6 }, () => ({ type: "hold" })));
      await firstTwo;
      const fourMore = started(4);
      const set = await node.call("PUT", "/api/queues/default/concurrency", { concurrency: 6 });
      assert.equal(set.status, 200);
      assert.equal(set.body.queue.concurrency, 6);
      await fourMore; // with the backstop poll at a minute, only the change can start them
      assert.equal(most, 6);
      assert.equal((await node.call("GET", "/api/queues")).body.queues[0].concurrency, 6);
      for (const bad of [{ concurrency: -1 }, { concurrency: 1001 }, { concurrency: "3" }, {}]) {
        assert.equal((await node.call("PUT", "/api/queues/default/concurrency", bad)).status, 400, JSON.stringify(bad));
      }
      assert.equal((await node.call("GET", "/api/queues")).body.queues[0].concurrency, 6, "nothing changed");
      release.open();
    });

    test("bulk actions on ids, then on every task matching a filter, in the background", async (t) => {
      const node = await startNode(t, (conveyor) => conveyor.define("done", () => "ok"));
      if (node === null) return;
      const { conveyor } = node;
      const idle = await conveyor.enqueueMany(
        Array.from({ length: 3 }, () => ({ type: "nobody.runs", queue: "parked" })),
      );
      const ids = idle.map((o) => o.task.id);
      const finished = await conveyor.enqueue("done");
      await conveyor.result(finished.id);

      const cancel = await node.call("POST", "/api/tasks/actions", {
        action: "cancel",
        ids: [...ids, finished.id, 987_654],
      });
      assert.equal(cancel.status, 200);
      assert.deepEqual(cancel.body.done, ids);
      assert.deepEqual(
        cancel.body.skipped.map((s: { id: number }) => s.id),
        [finished.id, 987_654],
      );
      const rerun = await node.call("POST", "/api/tasks/actions", { action: "rerun", ids: [ids[0]] });
      assert.deepEqual(rerun.body.done, [ids[0]]);
      assert.equal((await conveyor.get(ids[0]!))?.state, "queued");

      // Every cancelled task of the queue, through a conveyor.bulk task.
      const bulk = await node.call("POST", "/api/tasks/actions", {
        action: "delete",
        filter: { queue: "parked", state: ["cancelled"] },
      });
      assert.equal(bulk.status, 202);
      const outcome = await conveyor.result(bulk.body.task.id, { timeoutMs: 10_000 });
      assert.deepEqual(outcome, { action: "delete", done: 2, skipped: 0 });
      assert.equal(await conveyor.get(ids[1]!), null);
      assert.ok(await conveyor.get(ids[0]!), "the rerun one is queued, not cancelled: kept");
      const progress = (await conveyor.get(bulk.body.task.id))?.progress;
      assert.deepEqual(progress, { percent: 100, info: { action: "delete", done: 2, skipped: 0 } });

      for (const bad of [
        { action: "explode", ids: [1] },
        { action: "cancel" },
        { action: "cancel", ids: [] },
        { action: "cancel", ids: Array.from({ length: 1001 }, (_, i) => i + 1) },
        { action: "cancel", ids: [1], filter: {} },
        { action: "delete", filter: { state: ["bogus"] } },
      ]) {
        assert.equal(
          (await node.call("POST", "/api/tasks/actions", bad)).status,
          400,
          JSON.stringify(bad).slice(0, 80),
        );
      }
    });

    test("tasks are listed by creation time; a time that is no time is a 400", async (t) => {
      const node = await startNode(t, () => {});
      if (node === null) return;
      const before = await node.conveyor.enqueue("x.y");
      const cut = new Date(before.createdAt.getTime() + 1).toISOString();
      await new Promise((resolve) => setTimeout(resolve, 5)); // the next task must be created after the cut
      const after = await node.conveyor.enqueue("x.y");
      const list = async (query: string) =>
        (await node.call("GET", `/api/tasks?${query}`)).body.tasks.map((x: { id: number }) => x.id);
      assert.deepEqual(await list(`createdAfter=${cut}`), [after.id]);
      assert.deepEqual(await list(`createdBefore=${cut}`), [before.id]);
      assert.equal((await node.call("GET", "/api/tasks?createdAfter=yesterday")).status, 400);
    });

    test("failure injection: refused unless allowed; then a service crash is restarted, and a next attempt fails", async (t) => {
      const closed = await startNode(t, () => {});
      if (closed === null) return;
      const refused = await closed.call("POST", "/api/faults", { kind: "crash-service", service: "heartbeat" });
      assert.deepEqual([refused.status, refused.body.error.code], [403, "fault_injection_disabled"]);
      assert.equal((await closed.call("GET", "/api/node")).body.faultInjection, false);

      const node = await startNode(t, (conveyor) => conveyor.define("fine", () => "fine", { maxAttempts: 1 }), {
        conveyor: { allowFaultInjection: true },
      });
      if (node === null) return;
      const { conveyor } = node;
      assert.equal((await node.call("GET", "/api/node")).body.faultInjection, true);
      const crashed = conveyor.events.next("service:crashed", (e) => e.service === "membership");
      const restarted = conveyor.events.next("service:restarted", (e) => e.service === "membership");
      assert.equal(
        (await node.call("POST", "/api/faults", { kind: "crash-service", service: "membership" })).status,
        200,
      );
      assert.match(String((await crashed).error), /injected/);
      await restarted;
      const missing = await node.call("POST", "/api/faults", { kind: "crash-service", service: "no-such-service" });
      assert.deepEqual([missing.status, missing.body.error.code], [404, "service_not_found"]);

      assert.equal((await node.call("POST", "/api/faults", { kind: "fail-next", type: "fine", count: 1 })).status, 200);
      const first = await conveyor.enqueue("fine");
      await assert.rejects(conveyor.result(first.id, { timeoutMs: 10_000 }), { code: "task_failed" });
      assert.equal((await conveyor.get(first.id))?.error?.name, "InjectedFault");
      const second = await conveyor.enqueue("fine");
      assert.equal(await conveyor.result(second.id, { timeoutMs: 10_000 }), "fine", "only the next one");
      assert.equal((await node.call("POST", "/api/faults", { kind: "fail-next", type: "fine", count: 0 })).status, 400);
      assert.equal((await node.call("POST", "/api/faults", { kind: "teleport" })).status, 400);
    });

    test("the read-only token reads and follows the stream, never writes; whoami says which", async (t) => {
      const node = await startNode(t, () => {}, { tokens: true });
      if (node === null) return;
      assert.deepEqual((await node.call("GET", "/api/whoami", undefined, READ)).body, {
        scope: "read",
        tokens: { read: true, write: true, admin: false },
      });
      assert.equal((await node.call("GET", "/api/whoami", undefined, WRITE)).body.scope, "write");
      assert.equal((await node.call("GET", "/api/whoami", undefined, "")).body.scope, "none");
      assert.equal((await node.call("GET", "/api/tasks", undefined, READ)).status, 200);
      assert.equal((await node.call("GET", "/api/tasks", undefined, "nope")).status, 401, "reads need a token");
      const write = await node.call("POST", "/api/tasks", { type: "x.y" }, READ);
      assert.deepEqual([write.status, write.body.error.code], [403, "forbidden"]);
      assert.equal((await node.call("POST", "/api/tasks", { type: "x.y" }, WRITE)).status, 201);
      assert.equal((await node.call("GET", "/api/health", undefined, "")).status, 200, "health answers anyone");
      // The stream: the read token follows task channels, and cannot publish.
      const address = node.app.server.address() as { port: number };
      const socket = new WebSocket(`ws://127.0.0.1:${address.port}/api/live?token=${READ}`);
      const frames: Record<string, unknown>[] = [];
      const answered = (id: string) =>
        new Promise<Record<string, unknown>>((resolve) => {
          socket.addEventListener("message", (m) => {
            const frame = JSON.parse(String(m.data)) as Record<string, unknown>;
            frames.push(frame);
            if (frame.id === id || frame.ref === id) resolve(frame);
          });
        });
      await new Promise((resolve) => socket.addEventListener("open", resolve));
      const subscribed = answered("t");
      socket.send(JSON.stringify({ type: "subscribe", id: "t", channels: ["tasks", "nodes"] }));
      assert.equal((await subscribed).type, "subscribed");
      const published = answered("p");
      socket.send(JSON.stringify({ type: "publish", ref: "p", channel: "room:1", data: {} }));
      assert.equal((await published).code, "forbidden");
      socket.close();
    });
  });
}
