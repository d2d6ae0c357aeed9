/**
 * The task-system example end to end: real HTTP on a listening server (port 0), a temporary DATA_DIR,
 * short processing times. Waits are on the handler's events (started / completed / stopped) or on the
 * child process's output, never on fixed sleeps, except the one bounded pause that shows a pool of 0
 * runs nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Json } from "../../src/index.ts";
import { MAX_BODY_BYTES, startTaskSystem, type RunningTaskSystem, type StartOptions } from "./app.ts";
import { configFromEnv, ConfigurationError, DEFAULT_CONFIG } from "./config.ts";
import { QUEUE, WorkerSlots, type TaskSystemEvents } from "./tasks.ts";
import { freePort } from "../../test/support/free-port.ts";

const CONTENT_TYPE = "application/json; charset=utf-8";
const NOT_FOUND = '{"message":"Not Found!","status":404}';
const TASK_NOT_FOUND = '{"message":"Task not found!","status":404}';
const WAIT_MS = 10_000;

// ---- harness ------------------------------------------------------------------------------------------

const dirs: string[] = [];
const running: Harness[] = [];
after(async () => {
  await Promise.all(running.map((h) => h.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "task-system-"));
  dirs.push(dir);
  return dir;
}

type Seen = { started: Map<number, number>; completed: Set<number>; stopped: Map<number, string>; order: number[] };

type Harness = RunningTaskSystem & {
  url: string;
  lines: string[];
  seen: Seen;
  /** Resolves once `check()` holds, re-checked on every handler event; rejects after WAIT_MS. */
  until(what: string, check: () => boolean): Promise<void>;
  started(id: number): Promise<number>;
  completed(id: number): Promise<void>;
  stopped(id: number): Promise<string>;
};

/**
 * A task's processing time: `data.ms` when the test posts an object with one, else 200–400 ms. This keeps
 * each test in charge of how long its tasks run without sleeping.
 */
function durationMs(_id: number, data: Json): number {
  if (data !== null && typeof data === "object" && !Array.isArray(data) && typeof data.ms === "number") return data.ms;
  return 200 + Math.floor(Math.random() * 200);
}

async function boot(options: Partial<StartOptions> = {}): Promise<Harness> {
  const lines: string[] = [];
  const seen: Seen = { started: new Map(), completed: new Set(), stopped: new Map(), order: [] };
  const waiters = new Set<() => void>();
  const events = new EventEmitter<TaskSystemEvents>();
  const poke = () => waiters.forEach((w) => w());
  events.on("started", (id, worker) => (seen.started.set(id, worker), seen.order.push(id), poke()));
  events.on("completed", (id) => (seen.completed.add(id), poke()));
  events.on("stopped", (id, _worker, reason) => (seen.stopped.set(id, reason), poke()));
  const system = await startTaskSystem({
    port: 0,
    host: "127.0.0.1",
    poolSize: 2,
    dataDir: tempDir(),
    minSeconds: 0.2,
    maxSeconds: 0.4,
    shutdownGraceMs: 0,
    durationMs,
    log: (line) => lines.push(line),
    events,
    ...options,
  });
  const until = (what: string, check: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (check()) return resolve();
      const timer = setTimeout(
        () => (waiters.delete(waiter), reject(new Error(`timed out waiting until ${what}`))),
        WAIT_MS,
      );
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve();
      };
      waiters.add(waiter);
    });
  const harness: Harness = {
    ...system,
    url: `http://127.0.0.1:${system.port}`,
    lines,
    seen,
    until,
    started: async (id) => (await until(`task ${id} starts`, () => seen.started.has(id)), seen.started.get(id)!),
    completed: (id) => until(`task ${id} completes`, () => seen.completed.has(id)),
    stopped: async (id) => (await until(`task ${id} stops`, () => seen.stopped.has(id)), seen.stopped.get(id)!),
  };
  running.push(harness);
  return harness;
}

type Reply = { status: number; body: string; contentType: string | null };

async function request(h: { url: string }, method: string, path: string, body?: string | Uint8Array): Promise<Reply> {
  const response = await fetch(h.url + path, { method, ...(body === undefined ? {} : { body }) });
  return { status: response.status, body: await response.text(), contentType: response.headers.get("content-type") };
}

async function post(h: Harness, data: unknown): Promise<number> {
  const reply = await request(h, "POST", "/tasks", JSON.stringify(data));
  assert.equal(reply.status, 201, reply.body);
  const id = (JSON.parse(reply.body) as { id: number }).id;
  assert.ok(Number.isSafeInteger(id) && id > 0, `id ${id} is a positive safe integer`);
  return id;
}

async function runningIds(h: Harness): Promise<number[]> {
  const reply = await request(h, "GET", "/tasks");
  assert.equal(reply.status, 200);
  return (JSON.parse(reply.body) as { tasks: number[] }).tasks;
}

async function taskCount(h: Harness): Promise<number> {
  return (await h.conveyor.list({ queue: QUEUE, limit: 1000 })).tasks.length;
}

function completedLine(id: number, content: string): string {
  return `Task ${id} has just been completed with the following content: ${content}`;
}

// ---- configuration ------------------------------------------------------------------------------------

describe("configuration (env knobs)", () => {
  it("defaults to the seed's hard-coded values", () => {
    assert.deepEqual(configFromEnv({}), { port: 4000, poolSize: 5, dataDir: "./tmp", minSeconds: 1, maxSeconds: 5 });
    assert.deepEqual(configFromEnv({}), DEFAULT_CONFIG);
  });

  it("reads PORT, POOL_SIZE (0 allowed), DATA_DIR, MIN_SECONDS and MAX_SECONDS", () => {
    const env = { PORT: "8080", POOL_SIZE: "0", DATA_DIR: "/var/tasks", MIN_SECONDS: "0.2", MAX_SECONDS: "0.4" };
    assert.deepEqual(configFromEnv(env), {
      port: 8080,
      poolSize: 0,
      dataDir: "/var/tasks",
      minSeconds: 0.2,
      maxSeconds: 0.4,
    });
  });

  for (const value of ["abc", "-1", "1.5", "1e3", "5 workers", "99999"]) {
    it(`rejects POOL_SIZE=${JSON.stringify(value)} with a clear error`, () => {
      assert.throws(
        () => configFromEnv({ POOL_SIZE: value }),
        (error: Error) =>
          error instanceof ConfigurationError &&
          error.message.startsWith("POOL_SIZE must be an integer from 0 to 1000"),
      );
    });
  }

  it("rejects a bad PORT, bad seconds, and MIN_SECONDS above MAX_SECONDS", () => {
    assert.throws(() => configFromEnv({ PORT: "70000" }), /PORT must be an integer from 0 to 65535/);
    assert.throws(() => configFromEnv({ MIN_SECONDS: "-1" }), /MIN_SECONDS must be a number of seconds/);
    assert.throws(() => configFromEnv({ MAX_SECONDS: "soon" }), /MAX_SECONDS must be a number of seconds/);
    assert.throws(
      () => configFromEnv({ MIN_SECONDS: "3", MAX_SECONDS: "2" }),
      /MIN_SECONDS \(3\) must not be greater than MAX_SECONDS \(2\)/,
    );
  });

  it("numbers workers 1..n, reusing the lowest free number", () => {
    const slots = new WorkerSlots(3);
    assert.deepEqual([slots.acquire(), slots.acquire(), slots.acquire()], [1, 2, 3]);
    slots.release(2);
    assert.equal(slots.acquire(), 2);
    assert.deepEqual(slots.busy, [1, 2, 3]);
  });
});

// ---- the HTTP contract --------------------------------------------------------------------------------

describe("HTTP contract (C.3)", () => {
  it("logs 'Worker <n> is started!' for each pool slot", async () => {
    const h = await boot({ poolSize: 3 });
    assert.deepEqual(h.lines, ["Worker 1 is started!", "Worker 2 is started!", "Worker 3 is started!"]);
  });

  it('GET /tasks with nothing running is exactly {"tasks":[]}, with the exact content-type', async () => {
    const h = await boot();
    const reply = await request(h, "GET", "/tasks");
    assert.deepEqual(reply, { status: 200, body: '{"tasks":[]}', contentType: CONTENT_TYPE });
  });

  it('POST /tasks echoes any JSON value as {"data":…,"id":…} with a safe integer id', async () => {
    const h = await boot({ poolSize: 0 }); // nothing runs: this test is only about the replies
    const values: Json[] = [
      { name: "Jean", number: "42" },
      [1, "two", { three: [3] }],
      "just a string",
      42,
      -1.5,
      0,
      true,
      false,
      null,
      { nested: { deep: [null, { é: "ü 😀" }] } },
      [],
      {},
    ];
    const ids: number[] = [];
    for (const value of values) {
      const reply = await request(h, "POST", "/tasks", JSON.stringify(value));
      assert.equal(reply.status, 201);
      assert.equal(reply.contentType, CONTENT_TYPE);
      const id = (JSON.parse(reply.body) as { id: number }).id;
      assert.ok(Number.isSafeInteger(id) && id > 0);
      assert.equal(reply.body, `{"data":${JSON.stringify(value)},"id":${id}}`, "exact body, data first");
      ids.push(id);
    }
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      "ids increase",
    );
    assert.equal(new Set(ids).size, ids.length, "ids are unique");
    // Whitespace and key order of the body do not matter; Content-Type is not checked.
    const reply = await fetch(`${h.url}/tasks`, {
      method: "POST",
      body: ' \n { "b" : 1 , "a" : [ ] } ',
      headers: { "content-type": "text/plain" },
    });
    assert.equal(reply.status, 201);
    assert.match(await reply.text(), /^\{"data":\{"b":1,"a":\[\]\},"id":\d+\}$/);
  });

  it("a task is listed while it runs, leaves the list when done, and logs the seed's lines", async () => {
    const h = await boot({ poolSize: 2 });
    const id = await post(h, { name: "Jean", number: "42" });
    const worker = await h.started(id);
    assert.equal(worker, 1, "the lowest free worker number");
    assert.deepEqual(await runningIds(h), [id]);
    await h.completed(id);
    const finished = await h.conveyor.waitForFinish(id, WAIT_MS);
    assert.equal(finished?.state, "completed");
    assert.deepEqual(await runningIds(h), []);
    assert.deepEqual(h.lines.slice(2), [
      `Task ${id} is being processed by the worker ${worker}`,
      completedLine(id, "{ name: 'Jean', number: '42' }"),
    ]);
  });

  it("GET lists running tasks only, ascending, and never more than POOL_SIZE of them", async () => {
    const h = await boot({ poolSize: 2 });
    const a = await post(h, { ms: 60_000 });
    const b = await post(h, { ms: 300 });
    const c = await post(h, { ms: 300 });
    await h.started(a);
    await h.started(b);
    assert.deepEqual(await runningIds(h), [a, b], "c is queued, not listed");
    assert.equal(h.seen.started.has(c), false);
    await h.completed(b);
    // c takes the worker number b gave back.
    assert.equal(await h.started(c), h.seen.started.get(b));
    await h.conveyor.waitForFinish(b, WAIT_MS);
    assert.deepEqual(await runningIds(h), [a, c]);
    await h.completed(c);
    assert.equal(h.lines.filter((line) => line.includes("is being processed by the worker")).length, 3);
  });

  it("DELETE of a running task: 204, it really stops, leaves the list at once, and frees its worker", async () => {
    const h = await boot({ poolSize: 1 });
    const a = await post(h, { ms: 60_000 }); // would run a minute if not really stopped
    const b = await post(h, { ms: 100 });
    const workerA = await h.started(a);
    assert.deepEqual(await runningIds(h), [a]);

    // b is queued, not started: the seed answers 404 for it, and so do we (and b is not cancelled).
    assert.deepEqual(await request(h, "DELETE", `/tasks/${b}`), {
      status: 404,
      body: TASK_NOT_FOUND,
      contentType: CONTENT_TYPE,
    });
    assert.equal((await h.conveyor.get(b))?.state, "queued");

    const stop = await request(h, "DELETE", `/tasks/${a}`);
    assert.deepEqual(stop, { status: 204, body: "", contentType: CONTENT_TYPE });
    assert.equal((await runningIds(h)).includes(a), false, "a leaves GET /tasks at once");
    assert.equal(await h.stopped(a), "cancelled");
    assert.ok(h.lines.includes(`Task ${a} has just been stopped with the reference #Reference<0.${a}.1>`));

    // The only worker is really free again: b runs now, long before a's minute would be up.
    assert.equal(await h.started(b), workerA);
    assert.deepEqual(
      await request(h, "DELETE", `/tasks/${a}`),
      { status: 404, body: TASK_NOT_FOUND, contentType: CONTENT_TYPE },
      "second DELETE",
    );
    await h.completed(b);
    await h.conveyor.waitForFinish(b, WAIT_MS);
    assert.deepEqual(
      await request(h, "DELETE", `/tasks/${b}`),
      { status: 404, body: TASK_NOT_FOUND, contentType: CONTENT_TYPE },
      "finished task",
    );

    assert.equal((await h.conveyor.get(a))?.state, "cancelled");
    assert.equal(h.seen.completed.has(a), false);
    assert.equal(
      h.lines.some((line) => line.startsWith(`Task ${a} has just been completed`)),
      false,
      "a never completes",
    );
  });

  it("DELETE of an unknown or non-integer id: 404 Task not found!", async () => {
    const h = await boot({ poolSize: 0 });
    const id = await post(h, { queued: true });
    for (const path of [
      "/tasks/999999",
      "/tasks/0",
      "/tasks/abc",
      "/tasks/1.5",
      "/tasks/-1",
      "/tasks/1e3",
      "/tasks/%31",
      "/tasks/99999999999999999999",
      `/tasks/${2 ** 53}`,
      `/tasks/${id}`,
    ]) {
      assert.deepEqual(
        await request(h, "DELETE", path),
        { status: 404, body: TASK_NOT_FOUND, contentType: CONTENT_TYPE },
        path,
      );
    }
    assert.equal((await h.conveyor.get(id))?.state, "queued");
  });

  it("bad or empty JSON: 400 with a message, and nothing is enqueued", async () => {
    const h = await boot({ poolSize: 0 });
    const bodies: (string | Uint8Array)[] = [
      "",
      "   \n",
      "{bad",
      '{"a":1',
      "[1,]",
      "undefined",
      "'single'",
      "{} {}",
      "1e400",
      new Uint8Array([0x22, 0xff, 0x22]),
    ];
    for (const body of bodies) {
      const reply = await request(h, "POST", "/tasks", body);
      assert.equal(reply.status, 400, String(body));
      assert.equal(reply.contentType, CONTENT_TYPE);
      const parsed = JSON.parse(reply.body) as { message: unknown; status: unknown };
      assert.deepEqual(Object.keys(parsed), ["message", "status"]);
      assert.equal(parsed.status, 400);
      assert.ok(typeof parsed.message === "string" && parsed.message.length > 0);
    }
    assert.match(
      (await request(h, "POST", "/tasks", "")).body,
      /^\{"message":"Invalid JSON: the body is empty","status":400\}$/,
    );
    assert.equal(await taskCount(h), 0);
  });

  it("a body over 8 MB: 413, nothing enqueued", async () => {
    const h = await boot({ poolSize: 0 });
    const reply = await request(h, "POST", "/tasks", JSON.stringify("x".repeat(MAX_BODY_BYTES)));
    assert.equal(reply.status, 413);
    assert.equal(reply.body, `{"message":"Request body is larger than ${MAX_BODY_BYTES} bytes","status":413}`);
    assert.equal(await taskCount(h), 0);
  });

  it("any other route: 404 Not Found!", async () => {
    const h = await boot({ poolSize: 0 });
    for (const [method, path] of [
      ["GET", "/task"],
      ["PUT", "/tasks"],
      ["DELETE", "/tasks"],
      ["PATCH", "/tasks"],
      ["GET", "/tasks/1/2"],
      ["DELETE", "/tasks/1/2"],
      ["GET", "/tasks/1"],
      ["POST", "/tasks/1"],
      ["GET", "/"],
      ["GET", "/TASKS"],
    ] as const) {
      assert.deepEqual(
        await request(h, method, path),
        { status: 404, body: NOT_FOUND, contentType: CONTENT_TYPE },
        `${method} ${path}`,
      );
    }
    assert.equal(await taskCount(h), 0);
  });

  it("trailing (and doubled) slashes and query strings are ignored", async () => {
    const h = await boot({ poolSize: 0 });
    assert.deepEqual(await request(h, "GET", "/tasks/"), {
      status: 200,
      body: '{"tasks":[]}',
      contentType: CONTENT_TYPE,
    });
    assert.deepEqual(await request(h, "GET", "//tasks//?x=1"), {
      status: 200,
      body: '{"tasks":[]}',
      contentType: CONTENT_TYPE,
    });
    const reply = await request(h, "POST", "/tasks/", '{"slash":true}');
    assert.equal(reply.status, 201);
    const id = (JSON.parse(reply.body) as { id: number }).id;
    assert.deepEqual(await request(h, "DELETE", `/tasks/${id}/`), {
      status: 404,
      body: TASK_NOT_FOUND,
      contentType: CONTENT_TYPE,
    });
    assert.deepEqual(await request(h, "GET", "/task/"), { status: 404, body: NOT_FOUND, contentType: CONTENT_TYPE });
  });
});

// ---- pool size 0 and restarts -------------------------------------------------------------------------

describe("durability and POOL_SIZE", () => {
  it("POOL_SIZE=0 queues without running", async () => {
    const h = await boot({ poolSize: 0 });
    assert.deepEqual(h.lines, [], "no workers");
    const id = await post(h, { name: "Jean" });
    // Proving that nothing happens takes a pause: 300 ms is well past the ~1 ms a claim takes.
    await sleep(300);
    assert.deepEqual(await runningIds(h), []);
    assert.equal((await h.conveyor.get(id))?.state, "queued");
    assert.equal(h.seen.started.size, 0);
    assert.deepEqual(h.lines, []);
  });

  it("queued tasks survive a restart and then run in FIFO order", async () => {
    const dataDir = tempDir();
    const first = await boot({ poolSize: 0, dataDir });
    const a = await post(first, { name: "first" });
    const b = await post(first, ["second"]);
    await first.stop();

    const second = await boot({ poolSize: 2, dataDir });
    await second.completed(a);
    await second.completed(b);
    assert.deepEqual(second.seen.order, [a, b], "FIFO");
    assert.deepEqual([second.seen.started.get(a), second.seen.started.get(b)], [1, 2]);
    assert.deepEqual(second.lines.slice(0, 4), [
      "Worker 1 is started!",
      "Worker 2 is started!",
      `Task ${a} is being processed by the worker 1`,
      `Task ${b} is being processed by the worker 2`,
    ]);
    assert.ok(second.lines.includes(completedLine(a, "{ name: 'first' }")));
    assert.ok(second.lines.includes(completedLine(b, "[ 'second' ]")));
  });

  it("a task running at shutdown goes back to the queue and runs again on the next start", async () => {
    const dataDir = tempDir();
    const first = await boot({ poolSize: 1, dataDir, shutdownGraceMs: 0 });
    const id = await post(first, { ms: 60_000 });
    await first.started(id);
    await first.stop();
    assert.equal(first.seen.stopped.get(id), "shutdown");
    assert.ok(first.lines.includes(`Task ${id} was interrupted (shutdown) and goes back to the queue`));

    const second = await boot({ poolSize: 1, dataDir, durationMs: () => 50 });
    await second.completed(id);
    assert.ok(second.lines.includes(completedLine(id, "{ ms: 60000 }")));
  });
});

// ---- the real entry point -----------------------------------------------------------------------------

const SERVER = new URL("./server.ts", import.meta.url).pathname;

function spawnServer(env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => ((stdout += chunk), waiters.forEach((w) => w())));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => (waiters.forEach((w) => w()), resolve(code))),
  );
  const output = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (stdout.includes(text)) return (cleanup(), resolve());
        if (child.exitCode !== null)
          return (
            cleanup(), reject(new Error(`server exited before printing ${JSON.stringify(text)}:\n${stdout}\n${stderr}`))
          );
      };
      const timer = setTimeout(
        () => (cleanup(), reject(new Error(`timed out waiting for ${JSON.stringify(text)}:\n${stdout}\n${stderr}`))),
        WAIT_MS,
      );
      const cleanup = () => (clearTimeout(timer), waiters.delete(check));
      waiters.add(check);
      check();
    });
  return { child, exited, output, stdout: () => stdout, stderr: () => stderr };
}

describe("server.ts (the real entry point)", () => {
  it("boots from env, answers GET /tasks, processes a task, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const server = spawnServer({
      PORT: String(port),
      POOL_SIZE: "2",
      DATA_DIR: join(tempDir(), "data"),
      MIN_SECONDS: "0.1",
      MAX_SECONDS: "0.2",
    });
    try {
      await server.output("Running TaskApi at");
      assert.ok(server.stdout().startsWith("Worker 1 is started!\nWorker 2 is started!\n"));
      const h = { url: `http://127.0.0.1:${port}` };
      assert.deepEqual(await request(h, "GET", "/tasks"), {
        status: 200,
        body: '{"tasks":[]}',
        contentType: CONTENT_TYPE,
      });
      const reply = await request(h, "POST", "/tasks", '{"name":"Jean","number":"42"}');
      assert.equal(reply.status, 201);
      const id = (JSON.parse(reply.body) as { id: number }).id;
      await server.output(completedLine(id, "{ name: 'Jean', number: '42' }"));
      assert.match(server.stdout(), new RegExp(`Task ${id} is being processed by the worker [12]\\n`));
      server.child.kill("SIGTERM");
      assert.equal(await server.exited, 0);
      assert.match(server.stdout(), /Received SIGTERM, stopping[^\n]*\nStopped\.\n$/);
    } finally {
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
    }
  });

  it("refuses a bad POOL_SIZE at startup with a clear message", async () => {
    const server = spawnServer({ PORT: String(await freePort()), POOL_SIZE: "-1", DATA_DIR: tempDir() });
    assert.equal(await server.exited, 2);
    assert.match(server.stderr(), /^task-system: POOL_SIZE must be an integer from 0 to 1000, got "-1"\n$/);
    assert.equal(server.stdout(), "");
  });
});
