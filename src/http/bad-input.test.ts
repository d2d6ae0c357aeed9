/**
 * Bad requests, as a table: each row is a method, a path, a body or headers, and the status and error code
 * it must get. After every row the store must be exactly as before (tasks and queues), and no row may get
 * a 5xx. The fixture holds no running task, so nothing moves on its own while the table runs.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ErrorCode } from "../core/errors.ts";
import { startFixture, type CallInit, type Fixture } from "./server-fixture.ts";

type Row = {
  name: string;
  method: string;
  path: string;
  init?: CallInit;
  status: number;
  code: ErrorCode;
  detail?: RegExp;
};

const MiB = 1024 * 1024;
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** Ids the fixture made: a completed, a failed, a cancelled and a held (queued, in a paused queue) task. */
type Ids = { completed: number; failed: number; cancelled: number; held: number };

function rows(ids: Ids): Row[] {
  const post = (name: string, body: unknown, status: number, code: ErrorCode, detail?: RegExp): Row => ({
    name,
    method: "POST",
    path: "/api/tasks",
    init: { body },
    status,
    code,
    detail,
  });
  const raw = (
    name: string,
    raw: string,
    status: number,
    code: ErrorCode,
    headers: Record<string, string> = { "content-type": "application/json" },
  ): Row => ({ name, method: "POST", path: "/api/tasks", init: { raw, headers }, status, code });
  const bulk = (name: string, body: unknown, detail?: RegExp): Row => ({
    name,
    method: "POST",
    path: "/api/tasks/bulk",
    init: { body },
    status: 400,
    code: "validation_failed",
    detail,
  });
  const get = (path: string, status: number, code: ErrorCode, detail?: RegExp): Row => ({
    name: `GET ${path.slice(0, 80)}`,
    method: "GET",
    path,
    status,
    code,
    detail,
  });
  const bad = (method: string, path: string) => ({
    name: `${method} ${path.slice(0, 80)}`,
    method,
    path,
    status: 400,
    code: "validation_failed" as const,
  });
  return [
    // POST /api/tasks: JSON and content
    raw("malformed JSON", '{"type": "echo",', 400, "invalid_json"),
    raw("prototype poisoning", '{"type": "echo", "__proto__": {"x": 1}}', 400, "invalid_json"),
    raw("JSON 200,000 levels deep", `{"type": "echo", "data": ${nested(200_000)}}`, 400, "validation_failed"),
    raw("empty body", "", 400, "validation_failed"),
    raw("an array body", "[1, 2]", 400, "validation_failed"),
    raw("a string body", '"echo"', 400, "validation_failed"),
    raw("a null body", "null", 400, "validation_failed"),
    raw("a number body", "42", 400, "validation_failed"),
    raw("body over 1 MiB", JSON.stringify({ type: "echo", data: "x".repeat(MiB) }), 413, "payload_too_large"),
    raw("text/plain", '{"type": "echo"}', 415, "unsupported_media_type", { "content-type": "text/plain" }),
    raw("form-encoded", "type=echo", 415, "unsupported_media_type", {
      "content-type": "application/x-www-form-urlencoded",
    }),
    raw("no content type", '{"type": "echo"}', 415, "unsupported_media_type", {}),
    // POST /api/tasks: fields
    post("no type", { data: 1 }, 400, "validation_failed", /type/),
    post("empty type", { type: "" }, 400, "validation_failed", /type/),
    post("type with spaces", { type: "has spaces" }, 400, "validation_failed", /type/),
    post("type not a string", { type: 5 }, 400, "validation_failed", /type/),
    post("type too long", { type: "t".repeat(129) }, 400, "validation_failed", /type/),
    post("priority as a string", { type: "echo", priority: "5" }, 400, "validation_failed", /priority/),
    post("priority 1.5", { type: "echo", priority: 1.5 }, 400, "validation_failed", /priority/),
    post("priority beyond a million", { type: "echo", priority: 1_000_001 }, 400, "validation_failed", /priority/),
    post("maxAttempts 0", { type: "echo", maxAttempts: 0 }, 400, "validation_failed", /maxAttempts/),
    post("maxAttempts 1.5", { type: "echo", maxAttempts: 1.5 }, 400, "validation_failed", /maxAttempts/),
    post("maxAttempts -1", { type: "echo", maxAttempts: -1 }, 400, "validation_failed", /maxAttempts/),
    post("maxAttempts as a string", { type: "echo", maxAttempts: "3" }, 400, "validation_failed", /maxAttempts/),
    post("runAt not a date", { type: "echo", runAt: "not-a-date" }, 400, "validation_failed", /runAt/),
    post("runAt without a time", { type: "echo", runAt: "2030-01-01" }, 400, "validation_failed", /runAt/),
    post("runAt as a number", { type: "echo", runAt: 1700000000000 }, 400, "validation_failed", /runAt/),
    post(
      "runAt and delay",
      { type: "echo", runAt: "2030-01-01T00:00:00Z", delay: 10 },
      400,
      "validation_failed",
      /runAt/,
    ),
    post("negative delay", { type: "echo", delay: -1 }, 400, "validation_failed", /delay/),
    post("delay over a year", { type: "echo", delay: 366 * 24 * 3600 * 1000 }, 400, "validation_failed", /delay/),
    post("timeoutMs 0", { type: "echo", timeoutMs: 0 }, 400, "validation_failed", /timeoutMs/),
    post("backoffMs as a string", { type: "echo", backoffMs: "10" }, 400, "validation_failed", /backoffMs/),
    post("queue with a slash", { type: "echo", queue: "a/b" }, 400, "validation_failed", /queue/),
    post("key too long", { type: "echo", key: "k".repeat(256) }, 400, "validation_failed", /key/),
    post("empty key", { type: "echo", key: "" }, 400, "validation_failed", /key/),
    post("key not a string", { type: "echo", key: 7 }, 400, "validation_failed", /key/),
    post("unknown property", { type: "echo", colour: "red" }, 400, "validation_failed", /colour/),
    post("data 300 levels deep", { type: "echo", data: JSON.parse(nested(300)) }, 400, "validation_failed", /data/),
    post("a key held by an active task", { type: "echo", key: "held-key" }, 409, "duplicate_key"),
    // POST /api/tasks/bulk
    bulk("no tasks", { tasks: [] }, /tasks/),
    bulk("1001 tasks", { tasks: Array.from({ length: 1001 }, () => ({ type: "echo" })) }, /tasks/),
    bulk("tasks not an array", { tasks: { type: "echo" } }, /tasks/),
    bulk("no tasks property", { type: "echo" }, /tasks/),
    bulk("an unknown top-level property", { tasks: [{ type: "echo" }], atomic: true }, /atomic/),
    bulk(
      "one bad item among good ones",
      { tasks: [{ type: "echo" }, { type: "echo" }, { type: "echo", priority: "high" }] },
      /tasks\.2\.priority/,
    ),
    bulk(
      "a bad item only the library catches",
      { tasks: [{ type: "echo" }, { type: "echo", runAt: "2030-01-01T00:00:00Z", delay: 1 }] },
      /tasks\.1\.runAt/,
    ),
    bulk("an item that is not an object", { tasks: [{ type: "echo" }, 3] }, /tasks\.1/),
    // GET /api/tasks
    get("/api/tasks?limit=0", 400, "validation_failed", /limit/),
    get("/api/tasks?limit=501", 400, "validation_failed", /limit/),
    get("/api/tasks?limit=1.5", 400, "validation_failed", /limit/),
    get("/api/tasks?limit=ten", 400, "validation_failed", /limit/),
    get("/api/tasks?limit=", 400, "validation_failed", /limit/),
    get("/api/tasks?state=bogus", 400, "validation_failed", /state/),
    get("/api/tasks?state=queued,bogus", 400, "validation_failed", /state/),
    get("/api/tasks?order=up", 400, "validation_failed", /order/),
    get("/api/tasks?after=0", 400, "validation_failed", /after/),
    get("/api/tasks?after=-5", 400, "validation_failed", /after/),
    get("/api/tasks?queue=bad%20name", 400, "validation_failed", /queue/),
    get("/api/tasks?sort=id", 400, "validation_failed", /sort/),
    // GET /api/tasks/:id and friends: malformed ids are 400, unknown ones 404
    ...["abc", "-1", "0", "1.5", "1e3", "0x10", "99999999999999999999", "9007199254740992", "%20"].map((id) =>
      get(`/api/tasks/${id}`, 400, "validation_failed", /id/),
    ),
    get(`/api/tasks/${"9".repeat(300)}`, 400, "validation_failed"),
    get("/api/tasks/%E0%A4%A", 400, "validation_failed"),
    get("/api/tasks/999999", 404, "task_not_found"),
    get(`/api/tasks/${ids.completed}?wait=-1`, 400, "validation_failed", /wait/),
    get(`/api/tasks/${ids.completed}?wait=61`, 400, "validation_failed", /wait/),
    get(`/api/tasks/${ids.completed}?wait=soon`, 400, "validation_failed", /wait/),
    get(`/api/tasks/${ids.completed}?wait=1&wait=2`, 400, "validation_failed", /wait/),
    get(`/api/tasks/${ids.completed}?verbose=1`, 400, "validation_failed", /verbose/),
    get("/api/tasks/999999?wait=1", 404, "task_not_found"),
    get("/api/tasks/999999/result", 404, "task_not_found"),
    get("/api/tasks/abc/result", 400, "validation_failed", /id/),
    get(`/api/tasks/${ids.completed}/result?wait=61`, 400, "validation_failed", /wait/),
    get(`/api/tasks/${ids.held}/result`, 408, "wait_timeout"),
    get(`/api/tasks/${ids.failed}/result`, 409, "task_failed"),
    get(`/api/tasks/${ids.cancelled}/result?wait=5`, 409, "task_cancelled"),
    get("/api/tasks/999999/events", 404, "task_not_found"),
    get("/api/tasks/0/events", 400, "validation_failed", /id/),
    get(`/api/tasks/${ids.completed}/events?limit=0`, 400, "validation_failed", /limit/),
    get(`/api/tasks/${ids.completed}/events?limit=1001`, 400, "validation_failed", /limit/),
    get(`/api/tasks/${ids.completed}/events?after=-1`, 400, "validation_failed", /after/),
    // DELETE and retry
    { name: "DELETE unknown", method: "DELETE", path: "/api/tasks/999999", status: 404, code: "task_not_found" },
    bad("DELETE", "/api/tasks/abc"),
    bad("DELETE", "/api/tasks/-1"),
    { name: "retry unknown", method: "POST", path: "/api/tasks/999999/retry", status: 404, code: "task_not_found" },
    bad("POST", "/api/tasks/1.5/retry"),
    {
      name: "retry a queued task",
      method: "POST",
      path: `/api/tasks/${ids.held}/retry`,
      status: 409,
      code: "invalid_state",
    },
    {
      name: "retry a completed task",
      method: "POST",
      path: `/api/tasks/${ids.completed}/retry`,
      status: 409,
      code: "invalid_state",
    },
    {
      name: "retry a failed task whose key is held again",
      method: "POST",
      path: `/api/tasks/${ids.failed}/retry`,
      status: 409,
      code: "duplicate_key",
    },
    {
      name: "retry with a malformed JSON body",
      method: "POST",
      path: `/api/tasks/${ids.failed}/retry`,
      init: { raw: "{", headers: { "content-type": "application/json" } },
      status: 400,
      code: "invalid_json",
    },
    // queues
    bad("POST", "/api/queues/bad%20name/pause"),
    bad("POST", "/api/queues/a%2Fb/pause"),
    bad("POST", `/api/queues/${"q".repeat(129)}/pause`),
    bad("POST", `/api/queues/${"q".repeat(300)}/resume`),
    // routes
    { name: "unknown route", method: "GET", path: "/api/nope", status: 404, code: "not_found" },
    {
      name: "unknown method on a route",
      method: "PUT",
      path: "/api/tasks",
      init: { body: { type: "echo" } },
      status: 404,
      code: "not_found",
    },
    {
      name: "PATCH a task",
      method: "PATCH",
      path: `/api/tasks/${ids.completed}`,
      init: { body: {} },
      status: 404,
      code: "not_found",
    },
    // Outside /api, a path is the dashboard's (its page answers /tasks); a file that is not there is still a 404.
    { name: "a missing file", method: "GET", path: "/missing.js", status: 404, code: "not_found" },
  ];
}

/** Everything a bad request must not change: every task's state and attempt, and every queue's stats. */
async function snapshot(f: Fixture): Promise<string> {
  const { tasks } = await f.conveyor.list({ limit: 500, order: "asc" });
  return JSON.stringify({
    tasks: tasks.map((t) => [t.id, t.state, t.attempt, t.key, t.priority]),
    queues: await f.conveyor.queues(),
  });
}

async function prepare(f: Fixture): Promise<Ids> {
  const { conveyor } = f;
  const completed = await conveyor.enqueue("echo", "done");
  const failed = await conveyor.enqueue("fail", null, { key: "held-key" });
  await conveyor.pauseQueue("held");
  const cancelled = await conveyor.enqueue("echo", null, { queue: "held" });
  await conveyor.cancel(cancelled.id);
  for (const task of [completed, failed]) await conveyor.waitForFinish(task.id, 10_000);
  // Takes the failed task's key, so retrying that one conflicts; sits queued in the paused queue.
  const held = await conveyor.enqueue("echo", null, { queue: "held", key: "held-key" });
  const ids = { completed: completed.id, failed: failed.id, cancelled: cancelled.id, held: held.id };
  const states = await Promise.all(Object.values(ids).map(async (id) => (await conveyor.get(id))?.state));
  assert.deepEqual(states, ["completed", "failed", "cancelled", "queued"]);
  return ids;
}

describe("bad requests change nothing", () => {
  let f: Fixture;
  let ids: Ids;
  before(async () => {
    f = await startFixture();
    ids = await prepare(f);
  });
  after(() => f.close());

  it("every row gets its status and code, and the store is unchanged", async () => {
    for (const row of rows(ids)) {
      const before = await snapshot(f);
      const reply = await f.call(row.method, row.path, row.init);
      const where = `${row.name}: ${JSON.stringify(reply.body).slice(0, 300)}`;
      assert.ok(reply.status < 500, where);
      assert.equal(reply.status, row.status, where);
      assert.equal(reply.body?.error?.code, row.code, where);
      assert.equal(typeof reply.body.error.message, "string", where);
      if (row.detail !== undefined) assert.match(reply.body.error.message, row.detail, where);
      assert.equal(await snapshot(f), before, `${row.name} changed the store`);
    }
  });

  it("headers over Node's 16 KiB limit get a 431 in the API's shape, before any route runs", async () => {
    const before = await snapshot(f);
    const reply = await f.call("POST", "/api/tasks", {
      body: { type: "echo" },
      headers: { "content-type": "application/json", "x-padding": "x".repeat(20_000) },
    });
    assert.equal(reply.status, 431);
    assert.equal(reply.body?.error?.code, "headers_too_large");
    assert.equal(await snapshot(f), before);
  });

  it("a 409 duplicate_key carries the task that holds the key", async () => {
    const reply = await f.call("POST", "/api/tasks", { body: { type: "echo", key: "held-key" } });
    assert.equal(reply.status, 409);
    assert.equal(reply.body.error.details.task.id, ids.held);
    assert.equal(reply.body.error.details.task.state, "queued");
  });

  it("validation errors list each problem with its field", async () => {
    const reply = await f.call("POST", "/api/tasks/bulk", {
      body: { tasks: [{ type: "echo" }, { type: "echo", maxAttempts: 0 }] },
    });
    assert.deepEqual(reply.body.error.details, [{ in: "body", field: "tasks.1.maxAttempts", message: "must be >= 1" }]);
  });

  it("a bulk with one bad item inserts none of the good ones", async () => {
    const { tasks: before } = await f.conveyor.list({ limit: 500 });
    const reply = await f.call("POST", "/api/tasks/bulk", {
      // The second item passes the schema; only the library's check (runAt and delay together) rejects it.
      body: {
        tasks: [
          { type: "echo", queue: "held", data: 1 },
          { type: "echo", queue: "held", runAt: "2030-01-01T00:00:00Z", delay: 5 },
        ],
      },
    });
    assert.equal(reply.status, 400);
    const { tasks: after } = await f.conveyor.list({ limit: 500 });
    assert.equal(after.length, before.length);
  });
});

describe("with a token, writes need it and reads do not", () => {
  const token = "s3cret-token";
  let f: Fixture;
  let ids: Ids;
  before(async () => {
    f = await startFixture({ token });
    ids = await prepare(f);
  });
  after(() => f.close());

  const writes = (id: number): Array<{ method: string; path: string; init?: CallInit }> => [
    { method: "POST", path: "/api/tasks", init: { body: { type: "echo" } } },
    { method: "POST", path: "/api/tasks", init: { raw: "{broken", headers: { "content-type": "application/json" } } },
    { method: "POST", path: "/api/tasks/bulk", init: { body: { tasks: [{ type: "echo" }] } } },
    { method: "DELETE", path: `/api/tasks/${id}` },
    { method: "POST", path: `/api/tasks/${id}/retry` },
    { method: "POST", path: "/api/queues/held/resume" },
    { method: "POST", path: "/api/queues/default/pause" },
  ];
  const wrong: Array<[string, Record<string, string>]> = [
    ["no header", {}],
    ["a wrong token", { authorization: "Bearer not-it" }],
    ["a longer wrong token", { authorization: `Bearer ${token}x` }],
    ["another scheme", { authorization: `Basic ${token}` }],
    ["the bare token", { authorization: token }],
    ["an empty bearer", { authorization: "Bearer " }],
  ];

  it("rejects every write without the right token with 401, changing nothing", async () => {
    for (const write of writes(ids.held)) {
      for (const [name, headers] of wrong) {
        const before = await snapshot(f);
        const reply = await f.call(write.method, write.path, {
          ...write.init,
          headers: { ...write.init?.headers, ...headers },
        });
        const where = `${write.method} ${write.path} with ${name}`;
        assert.equal(reply.status, 401, where);
        assert.equal(reply.body.error.code, "unauthorized", where);
        assert.match(reply.headers.get("www-authenticate") ?? "", /^Bearer/, where);
        assert.equal(await snapshot(f), before, `${where} changed the store`);
      }
    }
  });

  it("allows reads without a token", async () => {
    for (const path of [
      "/api/tasks",
      `/api/tasks/${ids.completed}`,
      `/api/tasks/${ids.completed}/events`,
      "/api/queues",
      "/api/node",
      "/api/nodes",
      "/api/health",
      "/metrics",
      "/api/openapi.json",
    ]) {
      assert.equal((await f.call("GET", path)).status, 200, path);
    }
  });

  it("accepts writes with the token, and documents it in OpenAPI", async () => {
    const added = await f.call("POST", "/api/tasks", {
      body: { type: "echo", data: "ok" },
      headers: { authorization: `bearer ${token}` },
    });
    assert.equal(added.status, 201);
    const stopped = await f.call("DELETE", `/api/tasks/${ids.held}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(stopped.body.task.state, "cancelled");
    const doc = (await f.call("GET", "/api/openapi.json")).body;
    assert.deepEqual(doc.paths["/api/tasks"].post.security, [{ bearer: ["write"] }]);
    assert.equal(doc.paths["/api/tasks"].get.security, undefined);
  });
});
