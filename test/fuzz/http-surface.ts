/**
 * The HTTP surface: every route the node's OpenAPI document lists (so a new endpoint is fuzzed without an edit
 * here), plus the Postoffice routes' bodies, which their handlers check themselves (hints below). Requests go in
 * process through `app.inject`.
 *
 * Properties:
 * - any request: never a 5xx (the store is up), never a crash; a 4xx says what went wrong in the API's error shape
 *   (`{error: {code, message}}` with a documented code, or Postoffice's `{data: {errors}}` on its routes), and
 *   changes nothing in the store;
 * - valid requests do what the API says: a task added is the task read back, a schedule put is the schedule got,
 *   a topic made is found, a paused queue is paused.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ERROR_CODES } from "../../src/core/errors.ts";
import type { FuzzNode } from "./fuzz-node.ts";
import type { FuzzProperty } from "./harness.ts";
import { contentType, hostileHeaders, hostileQueryValue, hostileRawBody, mutateBody, pathParam } from "./hostile.ts";
import { fromSchema, type Schema } from "./schema-arbitrary.ts";

type Route = { method: string; path: string; params: { name: string; in: string; schema: Schema }[]; body?: Schema };

export type HttpRequest = {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
};

/** Routes answered in Postoffice's shape (src/http/routes/postoffice.ts). */
const POSTOFFICE = new Set([
  "POST /api/topics",
  "POST /api/publishers",
  "DELETE /api/publishers/{id}",
  "POST /api/messages",
  "POST /api/bulk_messages",
  "POST /api/schedule_messages",
]);

/** Bodies of the routes that check their own (Postoffice's), as schemas for the generator. */
function postofficeBodies(receiverUrl: string): Record<string, Schema> {
  const message = {
    type: "object",
    required: ["topic", "payload"],
    properties: {
      topic: { enum: ["orders", "missing", ""] },
      payload: { type: ["object", "string", "array"] },
      attributes: { type: "object" },
    },
  };
  return {
    "POST /api/topics": {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 30 },
        origin_host: { enum: ["http://127.0.0.1:9/", "127.0.0.1", ""] },
        recovery_enabled: { type: "boolean" },
      },
    },
    "POST /api/publishers": {
      type: "object",
      required: ["topic", "target", "type"],
      properties: {
        topic: { enum: ["orders", "missing"] },
        target: {
          enum: [
            receiverUrl,
            `${receiverUrl}?x=1`,
            "http://127.0.0.1:9/",
            "http://localhost:1/",
            "ftp://127.0.0.1/",
            "not a url",
            "queue",
          ],
        },
        type: { enum: ["http", "pubsub", "other"] },
        active: { type: "boolean" },
        secret: { type: ["boolean", "string"] },
        seconds_timeout: { type: "integer", minimum: -5, maximum: 5000 },
        seconds_retry: { type: "integer", minimum: -5, maximum: 5000 },
        from_now: { type: "boolean" },
        filters: { type: "array", items: { type: "object" } },
      },
    },
    "POST /api/messages": message,
    "POST /api/bulk_messages": {
      ...message,
      properties: { ...message.properties, payload: { type: "array", items: { type: "object" }, maxItems: 5 } },
    },
    "POST /api/schedule_messages": {
      ...message,
      properties: {
        ...message.properties,
        schedule_at: {
          enum: [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00",
            "2030-13-45T99:00:00Z",
            "2020-01-01T00:00:00+01:00",
            "",
          ],
        },
      },
    },
  };
}

/** The routes of the node's OpenAPI document, with their parameters and body schemas. */
export async function routesOf(
  node: FuzzNode,
): Promise<{ routes: Route[]; resolve: (ref: string) => Schema | undefined }> {
  const reply = await node.app.inject({ method: "GET", url: "/api/openapi.json" });
  const document = reply.json() as {
    paths: Record<string, Record<string, any>>;
    components?: { schemas?: Record<string, Schema> };
  };
  const components = document.components?.schemas ?? {};
  const resolve = (ref: string) => components[ref.replace("#/components/schemas/", "")];
  const hints = postofficeBodies(node.receiver.url());
  const routes: Route[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const key = `${method.toUpperCase()} ${path}`;
      routes.push({
        method: method.toUpperCase(),
        path,
        params: (operation.parameters ?? []).map((p: any) => ({ name: p.name, in: p.in, schema: p.schema ?? {} })),
        body: operation.requestBody?.content?.["application/json"]?.schema ?? hints[key],
      });
    }
  }
  return { routes, resolve };
}

/** Ids and names likely to exist for a path parameter, by where it is. */
function likelyFor(node: FuzzNode, path: string, param: string): string[] {
  const k = node.known;
  if (param === "name") return path.startsWith("/api/schedules") ? k.schedules : k.queues;
  if (param === "topic") return k.topics;
  if (path.startsWith("/api/tasks")) return k.taskIds;
  if (path.startsWith("/api/publishers")) return k.publisherIds;
  if (path.startsWith("/api/messages")) return k.messageIds;
  return ["1", "2"];
}

/** `?wait=N` on a task no worker runs would hold the request N seconds: only values that answer at once. */
const quickWait = fc.constantFrom("0", "-1", "1e99", "abc", "", "0x10", "99999999", "1.5");

function queryValue(
  schema: Schema,
  name: string,
  resolve: (ref: string) => Schema | undefined,
): fc.Arbitrary<string | string[]> {
  if (name === "wait") return quickWait;
  const valid = fromSchema(schema, resolve).map((value) => (Array.isArray(value) ? value.map(String) : String(value)));
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 2, arbitrary: hostileQueryValue },
    { weight: 1, arbitrary: fc.array(hostileQueryValue, { minLength: 2, maxLength: 3 }) },
  );
}

function queryString(pairs: [string, string | string[]][]): string {
  const parts: string[] = [];
  for (const [name, value] of pairs) {
    for (const v of Array.isArray(value) ? value : [value])
      parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(v)}`);
  }
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

/** One request to `route`: its path params, query, body, content type and headers, each valid or not. */
export function requestFor(
  node: FuzzNode,
  route: Route,
  resolve: (ref: string) => Schema | undefined,
): fc.Arbitrary<HttpRequest> {
  const pathParams = route.params.filter((p) => p.in === "path");
  const queryParams = route.params.filter((p) => p.in === "query");
  const path = fc
    .tuple(...pathParams.map((p) => pathParam(likelyFor(node, route.path, p.name))))
    .map((values) => pathParams.reduce((text, p, i) => text.replace(`{${p.name}}`, values[i]!), route.path));
  const query = fc
    .tuple(
      fc.record(Object.fromEntries(queryParams.map((p) => [p.name, queryValue(p.schema, p.name, resolve)])), {
        requiredKeys: [],
      }),
      fc.option(fc.tuple(fc.constantFrom("__proto__", "unknown", "constructor[x]", "a[]", ""), hostileQueryValue), {
        freq: 5,
      }),
    )
    .map(
      ([known, extra]) =>
        [...Object.entries(known), ...(extra === null ? [] : [extra])] as [string, string | string[]][],
    );
  const writes = route.method !== "GET";
  const bodyValue =
    route.body !== undefined
      ? mutateBody(fromSchema(route.body, resolve))
      : fc.option(fc.jsonValue({ maxDepth: 2 }), { freq: 2 });
  const payload: fc.Arbitrary<string | Buffer | undefined> = writes
    ? fc.oneof(
        { weight: 6, arbitrary: bodyValue.map((value) => (value === undefined ? undefined : JSON.stringify(value))) },
        { weight: 2, arbitrary: hostileRawBody },
        { weight: 1, arbitrary: fc.constant(undefined) },
      )
    : fc.option(hostileRawBody, { freq: 8 }).map((p) => p ?? undefined);
  const method = fc.oneof(
    { weight: 12, arbitrary: fc.constant(route.method) },
    fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
  );
  return fc
    .record({ method, path, query, payload, type: contentType, headers: hostileHeaders })
    .map(({ method, path, query, payload, type, headers }) => {
      const all: Record<string, string> = { ...headers };
      if (type !== undefined && payload !== undefined) all["content-type"] = type;
      return { method, url: path + queryString(query), headers: all, ...(payload === undefined ? {} : { payload }) };
    });
}

/** Any request to any route. */
export function anyRequest(
  node: FuzzNode,
  routes: Route[],
  resolve: (ref: string) => Schema | undefined,
): fc.Arbitrary<HttpRequest> {
  return fc.oneof(...routes.map((route) => requestFor(node, route, resolve)));
}

function isPostoffice(request: HttpRequest): boolean {
  const path = request.url.split("?")[0]!;
  const shape = path.replace(/^\/api\/publishers\/[^/]+$/, "/api/publishers/{id}");
  return POSTOFFICE.has(`${request.method} ${shape}`);
}

/** Checks one answer: no 5xx, and a 4xx in the API's error shape that changed nothing. */
export async function checkRequest(node: FuzzNode, request: HttpRequest): Promise<void> {
  const before = node.running ? "" : await node.snapshot();
  node.errors.length = 0;
  const reply = await node.app.inject(request as any);
  const what = `${request.method} ${request.url.slice(0, 200)} → ${reply.statusCode} ${reply.body.slice(0, 300)}`;
  // The node under fuzz is not started (fuzz-node.ts): its health check rightly says it is not ready.
  const notReady =
    reply.statusCode === 503 &&
    request.url.startsWith("/api/health") &&
    !node.running &&
    (request.method === "HEAD" || reply.json().state === "idle");
  assert.ok(reply.statusCode < 500 || notReady, `a 5xx for a client's request: ${what}\n${node.errors.join("")}`);
  assert.deepEqual(node.dialled, [], "the node dialled outside loopback");
  if (reply.statusCode < 400 || notReady) return;
  if (request.method !== "HEAD") {
    let body: any;
    try {
      body = reply.json();
    } catch {
      assert.fail(`a 4xx whose body is not JSON: ${what}`);
    }
    // A request refused before routing (a malformed URL) gets the API's own shape even on a Postoffice path.
    if (isPostoffice(request) && body?.error === undefined) {
      assert.ok(body?.data?.errors !== undefined, `a Postoffice 4xx without data.errors: ${what}`);
    } else {
      const code = body?.error?.code;
      assert.ok(typeof code === "string" && code in ERROR_CODES, `a 4xx without a documented error code: ${what}`);
      assert.equal(typeof body.error.message, "string", `a 4xx without a message: ${what}`);
      assert.equal(
        ERROR_CODES[code as keyof typeof ERROR_CODES],
        reply.statusCode,
        `status and code disagree: ${what}`,
      );
    }
  }
  // On a running node, workers and deliveries change the store meanwhile: the not-started pass checks this.
  if (!node.running) {
    const after = await node.snapshot();
    if (after !== before) {
      let at = 0;
      while (before[at] === after[at]) at++;
      const around = (text: string) => text.slice(Math.max(0, at - 300), at + 300);
      assert.fail(
        `a refused request changed the store: ${what}\nbefore: …${around(before)}…\nafter:  …${around(after)}…`,
      );
    }
  }
}

const taskInput = fc.record(
  {
    type: fc.constantFrom("echo", "side.echo", "unknown.type"),
    // A `__proto__` or `constructor` key anywhere is refused as prototype poisoning (a 400): not valid here.
    data: fc
      .jsonValue({ maxDepth: 3 })
      .map((v) => JSON.parse(JSON.stringify(v ?? null)))
      .filter((v) => !/"(__proto__|constructor)":/.test(JSON.stringify(v))),
    priority: fc.integer({ min: -1000, max: 1000 }),
    queue: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/),
  },
  { requiredKeys: ["type"] },
);

export async function httpProperties(node: FuzzNode): Promise<FuzzProperty[]> {
  const { routes, resolve } = await routesOf(node);
  return [
    {
      name: "any request: no 5xx, errors in shape, a refusal changes nothing",
      weight: 4,
      property: fc.asyncProperty(anyRequest(node, routes, resolve), (request) => checkRequest(node, request)),
    },
    {
      name: "a task added is the task read back",
      property: fc.asyncProperty(taskInput, async (input) => {
        const created = await node.app.inject({ method: "POST", url: "/api/tasks", payload: input });
        assert.equal(created.statusCode, 201, created.body);
        const task = created.json().task;
        const read = (await node.app.inject({ method: "GET", url: `/api/tasks/${task.id}` })).json().task;
        assert.equal(read.type, input.type);
        assert.deepEqual(read.data, input.data ?? null);
        assert.equal(read.priority, input.priority ?? 0);
        if (input.queue !== undefined) assert.equal(read.queue, input.queue);
      }),
    },
    {
      name: "a topic made is found; a paused queue is paused",
      property: fc.asyncProperty(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,30}$/), async (name) => {
        const made = await node.app.inject({
          method: "POST",
          url: "/api/topics",
          payload: { name, origin_host: "http://127.0.0.1:9/" },
        });
        assert.ok(made.statusCode === 201 || made.statusCode === 409, made.body);
        const found = await node.app.inject({ method: "GET", url: `/api/topics/${encodeURIComponent(name)}` });
        assert.equal(found.statusCode, 200, found.body);
        assert.equal(found.json().topic.name, name);
        const paused = await node.app.inject({ method: "POST", url: `/api/queues/${encodeURIComponent(name)}/pause` });
        assert.ok(paused.statusCode < 300, paused.body);
        const queues = (await node.app.inject({ method: "GET", url: "/api/queues" })).json();
        const queue = (queues.queues as any[]).find((q) => q.queue === name);
        assert.equal(queue?.paused, true, JSON.stringify(queue));
        const resumed = await node.app.inject({
          method: "POST",
          url: `/api/queues/${encodeURIComponent(name)}/resume`,
        });
        assert.ok(resumed.statusCode < 300, resumed.body);
      }),
    },
  ];
}
