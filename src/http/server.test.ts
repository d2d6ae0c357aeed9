/**
 * The HTTP API's happy paths, over a real listening server and fetch, against a real Conveyor on SQLite.
 * Waiting tests wait on the response or on the handler starting, never on a sleep.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { TASK_STATES } from "../core/states.ts";
import { Conveyor } from "../runtime/conveyor.ts";
import { buildServer } from "./server.ts";
import { startFixture, type Fixture } from "./server-fixture.ts";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("HTTP API", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  const add = async (body: Record<string, unknown>) => {
    const reply = await f.call("POST", "/api/tasks", { body });
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    return reply.body.task;
  };

  it("adds a task and returns its result, with dates as ISO strings", async () => {
    const task = await add({ type: "echo", data: { hello: "world" }, priority: 5, maxAttempts: 2 });
    assert.equal(task.type, "echo");
    assert.equal(task.priority, 5);
    assert.equal(task.maxAttempts, 2);
    assert.match(task.createdAt, ISO);
    assert.match(task.runAt, ISO);
    const result = await f.call("GET", `/api/tasks/${task.id}/result?wait=10`);
    assert.deepEqual(result, {
      status: 200,
      body: { state: "completed", result: { hello: "world" } },
      headers: result.headers,
    });
    const got = await f.call("GET", `/api/tasks/${task.id}`);
    assert.equal(got.body.task.state, "completed");
    assert.match(got.body.task.finishedAt, ISO);
    assert.deepEqual(got.body.task.result, { hello: "world" });
  });

  it("schedules with runAt or delay", async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const later = await add({ type: "echo", runAt });
    assert.equal(later.state, "scheduled");
    assert.equal(later.runAt, runAt);
    const delayed = await add({ type: "echo", delay: 3_600_000 });
    assert.equal(delayed.state, "scheduled");
    for (const id of [later.id, delayed.id])
      assert.equal((await f.call("DELETE", `/api/tasks/${id}`)).body.task.state, "cancelled");
  });

  it("answers a result wait as soon as the task completes", async () => {
    const task = await add({ type: "gate" });
    await f.started(task.id);
    const arrived = new Promise((resolve) => f.app.server.once("request", resolve));
    const began = Date.now();
    const pending = f.call("GET", `/api/tasks/${task.id}/result?wait=30`);
    const pendingTask = f.call("GET", `/api/tasks/${task.id}?wait=30`);
    await arrived;
    f.open(task.id, { done: true });
    const [result, whole] = await Promise.all([pending, pendingTask]);
    assert.equal(result.status, 200);
    assert.deepEqual(result.body, { state: "completed", result: { done: true } });
    assert.equal(whole.body.task.state, "completed");
    assert.ok(Date.now() - began < 10_000, "the waits ended with the task, not with their timeout");
  });

  it("ends a wait at its timeout: the task as it is, or 408 wait_timeout for a result", async () => {
    const task = await add({ type: "block" });
    await f.started(task.id);
    const [whole, result] = await Promise.all([
      f.call("GET", `/api/tasks/${task.id}?wait=1`),
      f.call("GET", `/api/tasks/${task.id}/result?wait=1`),
    ]);
    assert.equal(whole.status, 200);
    assert.equal(whole.body.task.state, "running");
    assert.equal(result.status, 408);
    assert.equal(result.body.error.code, "wait_timeout");
    assert.equal(result.body.error.details.task.id, task.id);
    await f.call("DELETE", `/api/tasks/${task.id}`);
  });

  it("stops a running task: DELETE cancels it and fires its handler's signal", async () => {
    const task = await add({ type: "block" });
    await f.started(task.id);
    const stopped = await f.call("DELETE", `/api/tasks/${task.id}`);
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.task.state, "cancelled");
    const after = await f.call("GET", `/api/tasks/${task.id}?wait=10`);
    assert.equal(after.body.task.state, "cancelled");
    assert.ok(f.abortReasons.has(task.id), "the handler saw its signal fire");
    const result = await f.call("GET", `/api/tasks/${task.id}/result`);
    assert.equal(result.status, 409);
    assert.equal(result.body.error.code, "task_cancelled");
    const again = await f.call("DELETE", `/api/tasks/${task.id}`);
    assert.equal(again.status, 200, "stopping a finished task returns it unchanged");
    assert.equal(again.body.task.state, "cancelled");
  });

  it("reports a failed task's result as 409 task_failed with its error, and retries it", async () => {
    const task = await add({ type: "fail" });
    const result = await f.call("GET", `/api/tasks/${task.id}/result?wait=10`);
    assert.equal(result.status, 409);
    assert.equal(result.body.error.code, "task_failed");
    assert.equal(result.body.error.details.error.message, "boom");
    const failed = (await f.call("GET", `/api/tasks/${task.id}`)).body.task;
    assert.equal(failed.state, "failed");
    assert.equal(failed.error.message, "boom");
    assert.match(failed.error.at, ISO);
    const rerun = await f.call("POST", `/api/tasks/${task.id}/rerun`);
    assert.equal(rerun.status, 200);
    assert.equal(rerun.body.task.state, "queued");
    assert.equal(rerun.body.task.attempt, 0);
    const again = await f.call("GET", `/api/tasks/${task.id}/result?wait=10`);
    assert.equal(again.body.error.code, "task_failed", "it ran again, and failed again");
    // The old path goes on working.
    const retried = await f.call("POST", `/api/tasks/${task.id}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.task.state, "queued");
  });

  it("answers a duplicate key with 409 and the task that holds it, never a second task", async () => {
    const first = await add({ type: "block", key: "only-one" });
    const second = await f.call("POST", "/api/tasks", { body: { type: "block", key: "only-one" } });
    assert.equal(second.status, 409);
    assert.equal(second.body.error.code, "duplicate_key");
    assert.equal(second.body.error.details.task.id, first.id);
    const listed = await f.call("GET", "/api/tasks?key=only-one");
    assert.deepEqual(
      listed.body.tasks.map((t: { id: number }) => t.id),
      [first.id],
    );
    await f.call("DELETE", `/api/tasks/${first.id}`);
  });

  it("adds tasks in bulk, saying which were created", async () => {
    const reply = await f.call("POST", "/api/tasks/bulk", {
      body: {
        tasks: [
          { type: "echo", data: 1, key: "bulk-a" },
          { type: "echo", data: 2, key: "bulk-a" },
          { type: "echo", data: 3 },
        ],
      },
    });
    assert.equal(reply.status, 201);
    assert.deepEqual(reply.body.created, [true, false, true]);
    assert.equal(reply.body.tasks[1].id, reply.body.tasks[0].id);
    const third = await f.call("GET", `/api/tasks/${reply.body.tasks[2].id}/result?wait=10`);
    assert.deepEqual(third.body, { state: "completed", result: 3 });
  });

  it("lists with filters and pages with the cursor", async () => {
    const { body } = await f.call("POST", "/api/tasks/bulk", {
      body: { tasks: Array.from({ length: 5 }, (_, i) => ({ type: "echo", queue: "listing", data: i })) },
    });
    const ids: number[] = body.tasks.map((t: { id: number }) => t.id);
    const seen: number[] = [];
    let cursor: number | null = null;
    do {
      const page: Awaited<ReturnType<Fixture["call"]>> = await f.call(
        "GET",
        `/api/tasks?queue=listing&order=asc&limit=2${cursor === null ? "" : `&after=${cursor}`}`,
      );
      assert.equal(page.status, 200);
      seen.push(...page.body.tasks.map((t: { id: number }) => t.id));
      cursor = page.body.nextCursor;
    } while (cursor !== null);
    assert.deepEqual(seen, ids);
    const desc = await f.call("GET", "/api/tasks?queue=listing");
    assert.deepEqual(
      desc.body.tasks.map((t: { id: number }) => t.id),
      [...ids].reverse(),
    );
    const byType = await f.call("GET", "/api/tasks?type=fail&limit=500");
    assert.ok(byType.body.tasks.every((t: { type: string }) => t.type === "fail"));
    const byStates = await f.call("GET", "/api/tasks?queue=listing&state=queued,running&state=scheduled");
    assert.ok(
      byStates.body.tasks.every((t: { state: string }) => ["queued", "running", "scheduled"].includes(t.state)),
    );
    const cancelled = await f.call("GET", "/api/tasks?state=cancelled&limit=500");
    assert.ok(cancelled.body.tasks.length > 0);
    assert.ok(cancelled.body.tasks.every((t: { state: string }) => t.state === "cancelled"));
  });

  it("lists a task's events, oldest first, after an offset", async () => {
    const task = await add({ type: "echo" });
    await f.call("GET", `/api/tasks/${task.id}/result?wait=10`);
    const { status, body } = await f.call("GET", `/api/tasks/${task.id}/events`);
    assert.equal(status, 200);
    assert.deepEqual(
      body.events.map((e: { type: string }) => e.type),
      ["task.created", "task.started", "task.completed"],
    );
    assert.match(body.events[0].at, ISO);
    const rest = await f.call("GET", `/api/tasks/${task.id}/events?after=${body.events[0].offset}&limit=1`);
    assert.deepEqual(
      rest.body.events.map((e: { type: string }) => e.type),
      ["task.started"],
    );
  });

  it("pauses and resumes a queue: a paused queue's tasks wait", async () => {
    const paused = await f.call("POST", "/api/queues/side/pause");
    assert.equal(paused.status, 200);
    assert.equal(paused.body.queue.paused, true);
    const task = await add({ type: "side.echo", data: "later" });
    const waited = await f.call("GET", `/api/tasks/${task.id}?wait=1`);
    assert.equal(waited.body.task.state, "queued", "nothing claimed it for a second while paused");
    const queues = await f.call("GET", "/api/queues");
    const side = queues.body.queues.find((q: { queue: string }) => q.queue === "side");
    assert.deepEqual({ paused: side.paused, queued: side.counts.queued }, { paused: true, queued: 1 });
    const resumed = await f.call("POST", "/api/queues/side/resume");
    assert.equal(resumed.body.queue.paused, false);
    assert.deepEqual((await f.call("GET", `/api/tasks/${task.id}/result?wait=10`)).body, {
      state: "completed",
      result: "later",
    });
  });

  it("pre-pauses a queue no task has used yet", async () => {
    const reply = await f.call("POST", "/api/queues/not-yet-used/pause");
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body.queue, {
      queue: "not-yet-used",
      paused: true,
      concurrency: null,
      counts: Object.fromEntries(TASK_STATES.map((s) => [s, 0])),
    });
    await f.call("POST", "/api/queues/not-yet-used/resume");
  });

  it("describes the node and the cluster", async () => {
    const node = await f.call("GET", "/api/node");
    assert.equal(node.status, 200);
    assert.equal(node.body.id, f.conveyor.nodeId);
    assert.equal(node.body.driver, "sqlite");
    assert.equal(node.body.state, "running");
    const names = node.body.tree.children.map((c: { name: string }) => c.name);
    assert.deepEqual(
      names.filter((name: string) => name !== "leader"),
      ["services", "queues"],
    );
    const nodes = await f.call("GET", "/api/nodes");
    const me = nodes.body.nodes.find((n: { id: string }) => n.id === f.conveyor.nodeId);
    assert.ok(me);
    assert.match(me.heartbeatAt, ISO);
    assert.equal(me.alive, true);
    assert.equal(typeof me.heartbeatAgeMs, "number");
    assert.equal(
      nodes.body.leader === null || nodes.body.leader === f.conveyor.nodeId,
      true,
      "a lone node is the leader once elected",
    );
  });

  it("reports health by asking the store", async () => {
    const health = await f.call("GET", "/api/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "ok");
    assert.deepEqual(health.body.store, { ok: true, driver: "sqlite" });
  });

  it("serves Prometheus metrics from its own registry, so two servers do not clash", async () => {
    await add({ type: "echo" });
    const second = await buildServer({ conveyor: f.conveyor });
    try {
      const [one, two] = await Promise.all([
        f.call("GET", "/metrics"),
        second.inject({ method: "GET", url: "/metrics" }),
      ]);
      assert.equal(one.status, 200);
      assert.equal(two.statusCode, 200);
      assert.match(one.headers.get("content-type") ?? "", /^text\/plain/);
      assert.match(one.body, /^conveyor_tasks\{queue="default",state="completed"\} [1-9]\d*$/m);
      assert.match(one.body, /^conveyor_queue_paused\{queue="default"\} 0$/m);
      assert.match(one.body, /^conveyor_http_requests_total\{method="POST",route="\/api\/tasks",status="201"\} \d+$/m);
      assert.match(one.body, /^process_cpu_user_seconds_total /m);
      // What the soak (bench/soak/) samples every 10 s to see that a node stays flat over hours.
      for (const name of [
        "process_resident_memory_bytes",
        "nodejs_heap_size_used_bytes",
        "nodejs_active_handles_total",
        "nodejs_active_resources_total",
        "nodejs_eventloop_lag_p99_seconds",
      ])
        assert.match(one.body, new RegExp(`^${name} [0-9.e+-]+$`, "m"), name);
      assert.match(two.body, /^conveyor_tasks\{/m);
    } finally {
      await second.close();
    }
  });

  it("publishes an OpenAPI document in which every route has a summary and tags", async () => {
    const { status, body } = await f.call("GET", "/api/openapi.json");
    assert.equal(status, 200);
    assert.equal(body.openapi, "3.1.0");
    const expected = [
      "post /api/tasks",
      "post /api/tasks/bulk",
      "get /api/tasks",
      "get /api/tasks/{id}",
      "get /api/tasks/{id}/result",
      "delete /api/tasks/{id}",
      "post /api/tasks/{id}/rerun",
      "post /api/tasks/{id}/retry",
      "get /api/tasks/{id}/events",
      "get /api/queues",
      "post /api/queues/{name}/pause",
      "post /api/queues/{name}/resume",
      "put /api/queues/{name}/concurrency",
      "post /api/tasks/actions",
      "get /api/stats",
      "get /api/whoami",
      "post /api/faults",
      "get /api/node",
      "get /api/nodes",
      "get /api/health",
      "get /metrics",
      "get /api/openapi.json",
      "get /api/schedules",
      "get /api/schedules/{name}",
      "put /api/schedules/{name}",
      "delete /api/schedules/{name}",
      // Dispatch: Postoffice's paths, then Conveyor's own.
      "post /api/topics",
      "post /api/publishers",
      "delete /api/publishers/{id}",
      "post /api/messages",
      "post /api/bulk_messages",
      "post /api/schedule_messages",
      "get /api/topics",
      "get /api/topics/{topic}",
      "patch /api/topics/{topic}",
      "get /api/publishers",
      "get /api/publishers/{id}",
      "get /api/publishers/{id}/secret",
      "patch /api/publishers/{id}",
      "post /api/publishers/{id}/rotate-secret",
      "post /api/publishers/{id}/replay",
      "get /api/messages",
      "get /api/messages/{id}",
      "get /api/deliveries",
      "get /api/deliveries/{id}",
      "post /api/deliveries/{id}/replay",
      "post /api/deliveries/{id}/retry",
      "post /api/deliveries/{id}/cancel",
      "get /api/dispatch/counts",
    ];
    const operations = Object.entries(
      body.paths as Record<string, Record<string, { summary?: string; tags?: string[] }>>,
    ).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ name: `${method} ${path}`, op })));
    assert.deepEqual(operations.map((o) => o.name).sort(), [...expected].sort());
    for (const { name, op } of operations) {
      assert.ok(op.summary, `${name} has a summary`);
      assert.ok(op.tags && op.tags.length > 0, `${name} has tags`);
    }
    assert.ok(body.components.schemas.Task);
  });
});

describe("HTTP API of a node that is not running", () => {
  it("answers 503 on /api/health, and says when the store itself fails", async () => {
    const f = await startFixture({ start: false });
    try {
      const idle = await f.call("GET", "/api/health");
      assert.equal(idle.status, 503);
      assert.equal(idle.body.status, "ko");
      assert.equal(idle.body.store.ok, true);
      await f.conveyor.store.close();
      const broken = await f.call("GET", "/api/health");
      assert.equal(broken.status, 503);
      assert.equal(broken.body.store.ok, false);
      assert.equal(typeof broken.body.store.error, "string");
    } finally {
      await f.close();
    }
  });
});

describe("HTTP API closing", () => {
  it("answers waiting requests at once when the server closes", async () => {
    const f = await startFixture();
    try {
      const { body } = await f.call("POST", "/api/tasks", { body: { type: "block" } });
      await f.started(body.task.id);
      const arrived = new Promise((resolve) => f.app.server.once("request", resolve));
      const waiting = f.call("GET", `/api/tasks/${body.task.id}?wait=60`);
      await arrived;
      const began = Date.now();
      await f.app.close();
      const reply = await waiting;
      assert.equal(reply.status, 200);
      assert.equal(reply.body.task.state, "running");
      assert.ok(Date.now() - began < 10_000);
      // Finish the task so the runtime's own wait (and its timer) ends too.
      await f.conveyor.cancel(body.task.id);
    } finally {
      await f.close();
    }
  });
});

describe("a request that fails on the server", () => {
  it("is logged by the node's own logger, even from a server built without request logging (as the CLI's)", async () => {
    const lines: { msg?: string; url?: string; err?: { message?: string } }[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const directory = mkdtempSync(join(tmpdir(), "conveyor-500-"));
    const conveyor = new Conveyor({ database: join(directory, "db.sqlite"), logger });
    const app = await buildServer({ conveyor, logger: false });
    try {
      conveyor.store.queueStats = () => Promise.reject(new Error("the disk said no"));
      const reply = await app.inject({ method: "GET", url: "/api/queues?x=1" });
      assert.equal(reply.statusCode, 500);
      assert.equal(reply.json().error.code, "internal_error");
      assert.doesNotMatch(reply.body, /disk said no/, "the answer says nothing of the server's insides");
      const logged = lines.find((line) => line.msg === "request failed");
      assert.equal(logged?.url, "/api/queues");
      assert.equal(logged?.err?.message, "the disk said no");
    } finally {
      await app.close();
      await conveyor.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
