/**
 * The API's defences, over a real listening server: the three token scopes route by route (ADMIN_ROUTES), the
 * constant-time comparison, CORS closed unless configured, the security headers, the rate limit on requests that
 * carry no valid token, and tokens kept out of the request logs.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { syncBuiltinESMExports } from "node:module";
import { Writable } from "node:stream";
import { after, before, describe, it, mock } from "node:test";
import Fastify from "fastify";
import { scopeOf } from "./auth.ts";
import { conveyorRoutes } from "./server.ts";
import { type CallInit, type Fixture, startFixture } from "./server-fixture.ts";

const ADMIN = "admin-token-of-the-security-tests";
const WRITE = "write-token-of-the-security-tests";
const READ = "read-token-of-the-security-tests";

const as = (token: string | undefined, init: CallInit = {}): CallInit =>
  token === undefined ? init : { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } };

describe("token scopes: admin ⊃ write ⊃ read", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ token: WRITE, server: { readToken: READ, adminToken: ADMIN, rateLimit: 0 } });
  });
  after(() => f.close());

  it("whoami names the token given, and which tokens the node has", async () => {
    const tokens = { read: true, write: true, admin: true };
    for (const [token, scope] of [
      [ADMIN, "admin"],
      [WRITE, "write"],
      [READ, "read"],
      [undefined, "none"],
      ["nope", "none"],
    ] as const) {
      assert.deepEqual((await f.call("GET", "/api/whoami", as(token))).body, { scope, tokens }, String(token));
    }
  });

  it("reads need one of the three tokens; writes need write or admin", async () => {
    for (const token of [ADMIN, WRITE, READ]) assert.equal((await f.call("GET", "/api/tasks", as(token))).status, 200);
    const none = await f.call("GET", "/api/tasks");
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, "unauthorized");
    const add = { body: { type: "echo" } };
    for (const token of [ADMIN, WRITE]) assert.equal((await f.call("POST", "/api/tasks", as(token, add))).status, 201);
    const read = await f.call("POST", "/api/tasks", as(READ, add));
    assert.deepEqual([read.status, read.body.error.code], [403, "forbidden"]);
    assert.equal((await f.call("POST", "/api/tasks", as("nope", add))).status, 401);
  });

  it("fault injection, deletions and concurrency changes need the admin token", async () => {
    const id = (await f.call("POST", "/api/tasks", as(WRITE, { body: { type: "echo", delay: 3_600_000 } }))).body.task
      .id;
    await f.call("DELETE", `/api/tasks/${id}`, as(WRITE)); // only finished tasks are deleted
    await f.call("PUT", "/api/schedules/nightly", as(WRITE, { body: { cron: "0 3 * * *", type: "echo" } }));
    const cases: Array<[string, string, unknown, number]> = [
      // [method, path, body, status with the admin token]
      ["PUT", "/api/queues/default/concurrency", { concurrency: 3 }, 200],
      // The node does not allow fault injection: the admin token gets past the token check to that refusal.
      ["POST", "/api/faults", { kind: "fail-next", type: "echo", count: 1 }, 403],
      ["DELETE", "/api/schedules/nightly", undefined, 204],
      ["POST", "/api/tasks/actions", { action: "delete", ids: [id] }, 200],
      // Past the token check, Postoffice's API answers an unknown publisher in its own way.
      ["DELETE", "/api/publishers/999999", undefined, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const init = body === undefined ? {} : { body };
      for (const token of [WRITE, READ]) {
        const refused = await f.call(method, path, as(token, init));
        assert.deepEqual([refused.status, refused.body.error?.code], [403, "forbidden"], `${method} ${path} ${token}`);
        if (token === WRITE) assert.match(refused.body.error.message, /admin token/);
      }
      const anonymous = await f.call(method, path, init);
      assert.equal(anonymous.status, 401, `${method} ${path} without a token`);
      const allowed = await f.call(method, path, as(ADMIN, init));
      assert.equal(allowed.status, status, `${method} ${path}: ${JSON.stringify(allowed.body)}`);
      if (path === "/api/faults") assert.equal(allowed.body.error.code, "fault_injection_disabled");
    }
    assert.equal(await f.conveyor.get(id), null, "the admin token's bulk delete deleted the task");
    // Other bulk actions, pausing, and stopping a task (which keeps its row) stay writes.
    const other = (await f.call("POST", "/api/tasks", as(WRITE, { body: { type: "echo", delay: 3_600_000 } }))).body
      .task.id;
    const cancel = await f.call("POST", "/api/tasks/actions", as(WRITE, { body: { action: "cancel", ids: [other] } }));
    assert.equal(cancel.status, 200);
    assert.equal((await f.call("POST", "/api/queues/default/pause", as(WRITE))).status, 200);
    assert.equal((await f.call("POST", "/api/queues/default/resume", as(WRITE))).status, 200);
    assert.equal((await f.call("DELETE", `/api/tasks/${other}`, as(WRITE))).status, 200);
  });

  it("the OpenAPI document names the scope each operation needs", async () => {
    const { paths } = (await f.call("GET", "/api/openapi.json", as(READ))).body;
    assert.deepEqual(paths["/api/faults"].post.security, [{ bearer: ["admin"] }]);
    assert.deepEqual(paths["/api/queues/{name}/concurrency"].put.security, [{ bearer: ["admin"] }]);
    assert.deepEqual(paths["/api/tasks/actions"].post.security, [{ bearer: ["write", "admin"] }]);
    assert.deepEqual(paths["/api/tasks"].post.security, [{ bearer: ["write"] }]);
    assert.deepEqual(paths["/api/tasks"].get.security, [{ bearer: ["read"] }]);
  });

  it("compares every configured token in constant time", () => {
    const spy = mock.method(crypto, "timingSafeEqual");
    syncBuiltinESMExports();
    try {
      assert.equal(scopeOf({ admin: ADMIN, write: WRITE, read: READ }, "Bearer a-guess"), "none");
      assert.equal(spy.mock.callCount(), 3, "one constant-time comparison per token, whatever the guess");
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
  });
});

describe("without an admin token", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ token: WRITE, server: { rateLimit: 0 } });
  });
  after(() => f.close());

  it("the write token does admin's things, as before scopes had three levels", async () => {
    assert.deepEqual((await f.call("GET", "/api/whoami", as(WRITE))).body, {
      scope: "write",
      tokens: { read: false, write: true, admin: false },
    });
    const set = await f.call("PUT", "/api/queues/default/concurrency", as(WRITE, { body: { concurrency: 4 } }));
    assert.equal(set.status, 200);
    assert.equal((await f.call("PUT", "/api/queues/default/concurrency", { body: { concurrency: 4 } })).status, 401);
  });
});

describe("CORS", () => {
  it("is closed by default: no Access-Control-Allow-Origin, no preflight", async (t) => {
    const f = await startFixture({ server: { rateLimit: 0 } });
    t.after(() => f.close());
    const origin = { origin: "http://elsewhere.example" };
    const read = await f.call("GET", "/api/tasks", { headers: origin });
    assert.equal(read.status, 200);
    assert.equal(read.headers.get("access-control-allow-origin"), null);
    const preflight = await f.call("OPTIONS", "/api/tasks", {
      headers: { ...origin, "access-control-request-method": "POST" },
    });
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    assert.equal(preflight.headers.get("access-control-allow-methods"), null);
  });

  it("opens to the configured origins only", async (t) => {
    const f = await startFixture({ server: { rateLimit: 0, corsOrigins: ["http://app.example"] } });
    t.after(() => f.close());
    const read = await f.call("GET", "/api/tasks", { headers: { origin: "http://app.example" } });
    assert.equal(read.headers.get("access-control-allow-origin"), "http://app.example");
    assert.match(read.headers.get("vary") ?? "", /origin/i);
    const other = await f.call("GET", "/api/tasks", { headers: { origin: "http://elsewhere.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const preflight = await f.call("OPTIONS", "/api/tasks/1", {
      headers: {
        origin: "http://app.example",
        "access-control-request-method": "DELETE",
        "access-control-request-headers": "authorization",
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "http://app.example");
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /DELETE/);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/);
  });
});

describe("security headers", () => {
  const expectHeaders = (headers: Headers, what: string) => {
    const csp = headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'(;|$)/, what);
    assert.match(csp, /frame-ancestors 'none'/, what);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe/, what);
    assert.equal(headers.get("x-content-type-options"), "nosniff", what);
    assert.equal(headers.get("x-frame-options"), "DENY", what);
    assert.equal(headers.get("referrer-policy"), "same-origin", what);
  };

  it("are on the dashboard's page, its deep links, assets, the API and its refusals", async (t) => {
    const f = await startFixture({ token: WRITE, server: { rateLimit: 0 } });
    t.after(() => f.close());
    const page = await f.call("GET", "/");
    assert.equal(page.status, 200);
    expectHeaders(page.headers, "page");
    expectHeaders((await f.call("GET", "/tasks/42")).headers, "deep link");
    const asset = /src="[^"]*?(assets\/[^"]+\.js)"/.exec(String(page.body))?.[1];
    if (asset !== undefined) expectHeaders((await f.call("GET", `/${asset}`)).headers, "asset");
    expectHeaders((await f.call("GET", "/api/tasks")).headers, "API");
    expectHeaders((await f.call("POST", "/api/tasks", { body: { type: "echo" } })).headers, "401");
  });

  it("are Conveyor's own: a host app's other routes keep theirs", async (t) => {
    const f = await startFixture({ start: false });
    t.after(() => f.close());
    const host = Fastify();
    host.get("/", async () => "the host's page");
    await host.register(conveyorRoutes, { prefix: "/conveyor", conveyor: f.conveyor, dashboard: false });
    t.after(() => host.close());
    const own = await host.inject({ method: "GET", url: "/" });
    assert.equal(own.headers["content-security-policy"], undefined);
    assert.equal(own.headers["x-frame-options"], undefined);
    const mounted = await host.inject({ method: "GET", url: "/conveyor/api/queues" });
    assert.equal(mounted.statusCode, 200);
    assert.match(String(mounted.headers["content-security-policy"]), /frame-ancestors 'none'/);
  });
});

describe("rate limit on requests without a valid token", () => {
  it("answers 429 rate_limited with Retry-After past the limit; tokens and health checks are not limited", async (t) => {
    const f = await startFixture({ token: WRITE, server: { rateLimit: 5 } });
    t.after(() => f.close());
    for (let i = 0; i < 5; i++) assert.equal((await f.call("GET", "/api/queues")).status, 200, `request ${i + 1}`);
    const limited = await f.call("GET", "/api/queues");
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "rate_limited");
    assert.match(limited.body.error.message, /retry in/);
    assert.ok(Number(limited.headers.get("retry-after")) > 0, "Retry-After in seconds");
    // Token guesses count, and are refused like any other request past the limit.
    assert.equal((await f.call("POST", "/api/tasks", as("a-guess", { body: { type: "echo" } }))).status, 429);
    for (let i = 0; i < 10; i++) {
      assert.equal((await f.call("GET", "/api/queues", as(WRITE))).status, 200, "a valid token is never limited");
    }
    assert.equal((await f.call("GET", "/api/health")).status, 200, "health checks are exempt");
  });

  it("does not apply on a node without tokens", async (t) => {
    const f = await startFixture({ server: { rateLimit: 2 } });
    t.after(() => f.close());
    for (let i = 0; i < 6; i++) assert.equal((await f.call("GET", "/api/queues")).status, 200);
  });

  it("is off at 0", async (t) => {
    const f = await startFixture({ token: WRITE, server: { rateLimit: 0 } });
    t.after(() => f.close());
    for (let i = 0; i < 6; i++) assert.equal((await f.call("GET", "/api/queues")).status, 200);
  });
});

describe("request logs", () => {
  it("never carry a token, from the Authorization header or the query string", async (t) => {
    let log = "";
    const stream = new Writable({
      write(chunk, _encoding, done) {
        log += String(chunk);
        done();
      },
    });
    const f = await startFixture({
      token: WRITE,
      server: { readToken: READ, rateLimit: 0, logger: { level: "trace", stream } },
    });
    t.after(() => f.close());
    const sse = new AbortController();
    const stream1 = await fetch(`${f.base}/api/live/sse?channels=tasks&token=${READ}`, { signal: sse.signal });
    assert.equal(stream1.status, 200);
    // First (a stream taken after tasks were added holds the server's close for seconds: not this test's subject).
    // Read up to the subscription's answer, so that the server has taken the stream before it ends.
    const reader = stream1.body!.getReader();
    let text = "";
    while (!text.includes("event: subscribed")) text += new TextDecoder().decode((await reader.read()).value);
    sse.abort();
    await f.call("GET", "/api/tasks", as(READ));
    await f.call("POST", "/api/tasks", as("wrong-guess-of-the-log-test", { body: { type: "echo" } }));
    await f.call("POST", "/api/tasks", as(WRITE, { body: { type: "echo" } }));
    await f.call("GET", `/api/nothing-here?token=${WRITE}`);
    assert.match(log, /request completed/, "the requests were logged");
    assert.match(log, /token=\[redacted\]/, "the query string's token was replaced");
    for (const secret of [READ, WRITE, "wrong-guess-of-the-log-test"]) {
      assert.ok(!log.includes(secret), `${secret} is not in the log`);
    }
  });
});
