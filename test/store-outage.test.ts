/**
 * The store is slow or gone (issue 18, item 6). A node with its HTTP API in front of:
 * - PostgreSQL reached through a TCP proxy (test/support/tcp-proxy.ts) that the test freezes (a partition: the
 *   node's connections hang, new ones never get a greeting) or drops (connections reset, new ones refused: the
 *   server looks stopped). The shared PostgreSQL server itself is never touched.
 * - a SQLite file whose write lock another process holds for seconds (test/fixtures/hold-write-lock.ts).
 *
 * Asserted: GET /api/health answers 503 within HEALTH_BOUND_MS; GET and POST /api/tasks answer 503
 * `store_unavailable` with a Retry-After within API_BOUND_MS (a read on SQLite answers 200: WAL readers do not wait
 * for the writer); the node stays up (running, no service given up on); once the store is back, health answers
 * 200 again and the tasks enqueued around the outage run to completion. Each request is made with a client
 * deadline well beyond its bound, so "it answered" is a real assertion; the answer times are reported as
 * diagnostics.
 *
 * The bounds, from the store's deadlines: health has 1 s of its own (its own connection on PostgreSQL, a 1 s wait
 * for the write lock on SQLite); on PostgreSQL a statement fails after queryTimeoutMs (5 s) and a connection (from
 * the pool or the server) after 3 s; a SQLite write waits busyTimeoutMs (5 s) for another process's lock.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Conveyor } from "../src/index.ts";
import { buildServer } from "../src/http/server.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "./support/postgres.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { withTimeout } from "./support/watched-process.ts";

const HEALTH_BOUND_MS = 2500;
const API_BOUND_MS = 9000;
/** A client's patience: well past every bound, so that a request that hangs fails the test as a hang. */
const CLIENT_DEADLINE_MS = 20_000;
const LOCK_HOLDER = new URL("./fixtures/hold-write-lock.ts", import.meta.url).pathname;

type Answer = { status: number; body: any; retryAfter: string | null; ms: number };

/** A node with its API listening on loopback; `call` times each answer. */
async function startNode(t: TestContext, database: string, schema?: string) {
  const conveyor = new Conveyor({
    database,
    ...(schema === undefined ? {} : { schema }),
    logger: pino({ level: "silent" }),
    shutdownGraceMs: 200,
    pollIntervalMs: 200,
  });
  conveyor.define("echo", (data) => data);
  await conveyor.start();
  const app = await buildServer({ conveyor, logger: false });
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  t.after(async () => {
    await app.close();
    await conveyor.stop();
  });
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const started = Date.now();
    const response = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === "" ? null : JSON.parse(text),
      retryAfter: response.headers.get("retry-after"),
      ms: Date.now() - started,
    };
  };
  /** Polls health until it answers 200 (the store and the bus are back). */
  const healthy = async (within: number) => {
    const deadline = Date.now() + within;
    let last: Answer | null = null;
    while (Date.now() < deadline) {
      last = await call("GET", "/api/health");
      if (last.status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`health still not 200 after ${within} ms: ${JSON.stringify(last?.body)}`);
  };
  return { conveyor, call, healthy };
}

function assertUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error.code, "store_unavailable", what);
  assert.equal(answer.retryAfter, "2", `${what}: Retry-After`);
  assert.ok(answer.ms < API_BOUND_MS, `${what} answered in ${answer.ms} ms, beyond ${API_BOUND_MS} ms`);
}

function assertHealthDown(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.store.ok, false, what);
  assert.ok(answer.ms < HEALTH_BOUND_MS, `${what} answered in ${answer.ms} ms, beyond ${HEALTH_BOUND_MS} ms`);
}

/** The node is still up and has given up on none of its services. */
function assertStaysUp(conveyor: Conveyor): void {
  assert.equal(conveyor.state, "running");
  const failed = JSON.stringify(conveyor.supervisionTree()).match(/"name":"[^"]+","[^}]*"state":"failed"/g);
  assert.equal(failed, null, `services given up on: ${failed}`);
}

if (await postgresSuite("store outage on PostgreSQL")) {
  for (const cut of ["freeze", "drop"] as const) {
    test(`PostgreSQL ${cut === "freeze" ? "unreachable (connections hang)" : "stopped (connections refused)"}: 503s within bounds, the node stays up, work resumes`, {
      timeout: 60_000,
    }, async (t) => {
      const proxy = await TcpProxy.start("127.0.0.1", 5432);
      const schema = freshSchema(`outage_${cut}`);
      const { conveyor, call, healthy } = await startNode(t, proxy.rewrite(postgresUrl()), schema);
      // After the node's own cleanup (hooks run in the order they were added): it stops through the proxy.
      t.after(async () => {
        await proxy.close();
        await dropSchema(schema);
      });
      assert.equal((await call("GET", "/api/health")).status, 200);
      const before = await call("POST", "/api/tasks", { type: "echo", data: "before", delay: 2000 });
      assert.equal(before.status, 201);

      proxy[cut]();
      const [health, list, enqueue] = await Promise.all([
        call("GET", "/api/health"),
        call("GET", "/api/tasks"),
        call("POST", "/api/tasks", { type: "echo", data: "during" }),
      ]);
      assertHealthDown(health, "health");
      assertUnavailable(list, "GET /api/tasks");
      assertUnavailable(enqueue, "POST /api/tasks");
      // Again, once the pool's connections have been found dead: no slower than the first time.
      const [health2, list2] = await Promise.all([call("GET", "/api/health"), call("GET", "/api/tasks")]);
      assertHealthDown(health2, "health, again");
      assertUnavailable(list2, "GET /api/tasks, again");
      assertStaysUp(conveyor);

      proxy.heal();
      const healStarted = Date.now();
      await healthy(15_000);
      const backMs = Date.now() - healStarted;
      const after = await call("POST", "/api/tasks", { type: "echo", data: "after" });
      assert.equal(after.status, 201);
      assert.equal(
        await withTimeout(conveyor.result(before.body.task.id), 15_000, "the task enqueued before"),
        "before",
      );
      assert.equal(await withTimeout(conveyor.result(after.body.task.id), 15_000, "the task enqueued after"), "after");
      assertStaysUp(conveyor);
      t.diagnostic(
        `${cut}: health 503 in ${health.ms} ms then ${health2.ms} ms; GET /api/tasks 503 in ${list.ms} ms then ${list2.ms} ms; ` +
          `POST /api/tasks 503 in ${enqueue.ms} ms; health 200 again ${backMs} ms after the heal`,
      );
    });
  }
}

test("SQLite locked by another process: writes answer 503 within bounds, reads and health answer, work resumes", {
  timeout: 60_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-outage-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, "conveyor.db");
  const { conveyor, call, healthy } = await startNode(t, db);
  assert.equal((await call("GET", "/api/health")).status, 200);

  const HOLD_MS = 8000;
  const holder = spawn(process.execPath, [LOCK_HOLDER, db, String(HOLD_MS)], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => void holder.kill("SIGKILL"));
  let out = "";
  holder.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const released = new Promise<void>((resolve) => {
    holder.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("released")) resolve();
    });
  });
  await withTimeout(
    new Promise<void>((resolve) => holder.stdout.on("data", () => out.includes("locked") && resolve())),
    10_000,
    `the lock holder to lock (${out})`,
  );

  const [health, list, enqueue] = await Promise.all([
    call("GET", "/api/health"),
    call("GET", "/api/tasks"),
    call("POST", "/api/tasks", { type: "echo", data: "during" }),
  ]);
  assertHealthDown(health, "health");
  assert.equal(list.status, 200, `GET /api/tasks reads past the writer: ${JSON.stringify(list.body)}`);
  assertUnavailable(enqueue, "POST /api/tasks");
  assertStaysUp(conveyor);

  await withTimeout(released, HOLD_MS + 10_000, `the lock holder to release (${out})`);
  const releasedAt = Date.now();
  await healthy(10_000);
  const backMs = Date.now() - releasedAt;
  const after = await call("POST", "/api/tasks", { type: "echo", data: "after" });
  assert.equal(after.status, 201);
  assert.equal(await withTimeout(conveyor.result(after.body.task.id), 10_000, "the task enqueued after"), "after");
  assertStaysUp(conveyor);
  t.diagnostic(
    `SQLite locked ${HOLD_MS} ms: health 503 in ${health.ms} ms; GET /api/tasks 200 in ${list.ms} ms; ` +
      `POST /api/tasks 503 in ${enqueue.ms} ms; health 200 again ${backMs} ms after the release`,
  );
});
