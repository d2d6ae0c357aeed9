/**
 * The HTTP API of a Conveyor node on Fastify, in three forms that share one list of routes:
 *
 * - `conveyorRoutes`, a Fastify plugin: every route (the API under `/api`, `/metrics`, the live stream and the
 *   dashboard at `/`), registered under the plugin's prefix in a user's own Fastify app
 *   (`app.register(conveyorRoutes, { prefix: "/conveyor", conveyor })`). Its error handlers, JSON parser,
 *   validation (its own Ajv, coercion off), auth and body limit are its own: they do not leak into the host app.
 * - `buildServer`, the node's own Fastify app (what `conveyor start` listens with): the plugin at the root, plus the
 *   server-wide settings a plugin cannot make (long path params, errors raised before routing).
 * - `createRequestHandler`, a `(req, res)` handler for a plain `node:http` server, with `upgrade` (or `attach`) for
 *   the live stream's WebSocket.
 *
 * Validation: one Ajv instance with coercion OFF, so a body's `"priority": "5"` is a 400, and unknown body
 * properties are rejected rather than stripped. Query strings and path params are text by nature: a
 * preValidation hook turns the ones the route's schema declares as integers (or lists) into numbers (or
 * arrays) first, and the same schemas then check them.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { Duplex } from "node:stream";
import { AjvCompiler } from "@fastify/ajv-compiler";
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import swagger from "@fastify/swagger";
import type { Conveyor } from "../runtime/conveyor.ts";
import { installAuth, type Tokens } from "./auth.ts";
import { installCors } from "./cors.ts";
import { DEFAULT_RATE_LIMIT, installRateLimit } from "./rate-limit.ts";
import { installSecurityHeaders } from "./security-headers.ts";
import { redactedLogger } from "./log-redaction.ts";
import { clientErrorHandler, frameworkErrorHandler, installErrorHandlers } from "./errors.ts";
import { createMetrics, installRequestMetrics } from "./metrics.ts";
import { registerNodeRoutes } from "./routes/node.ts";
import { registerDashboardRoutes } from "./routes/home.ts";
import { registerQueueRoutes } from "./routes/queues.ts";
import { registerScheduleRoutes } from "./routes/schedules.ts";
import { registerTaskRoutes } from "./routes/tasks.ts";
import { registerStatsRoutes } from "./routes/stats.ts";
import { registerFaultRoutes } from "./routes/faults.ts";
import { registerPostofficeRoutes } from "./routes/postoffice.ts";
import { registerDispatchRoutes } from "./routes/dispatch.ts";
import { SHARED_SCHEMAS } from "./schemas.ts";
import { installStorableText } from "./storable-text.ts";
import { registerLiveRoutes } from "../realtime/routes.ts";

export type ServerOptions = {
  conveyor: Conveyor;
  /** When set, writes (POST, PUT, PATCH, DELETE) need `Authorization: Bearer <token>`. */
  token?: string | null;
  /** A read-only token: when set, the API's reads need it (or the write token); it can never write. */
  readToken?: string | null;
  /**
   * The admin token: when set, fault injection, deletions and concurrency changes need it (auth.ts, ADMIN_ROUTES);
   * it may do all the write token may. Unset, the write token may do them.
   */
  adminToken?: string | null;
  /** Origins whose pages may call the API (CORS); default none. `["*"]` for any. */
  corsOrigins?: readonly string[] | null;
  /**
   * Requests a minute per client address that carry no valid token, where the node has a token (default 600; 0: no
   * limit).
   */
  rateLimit?: number;
  /** Fastify's logger option: false (default), true, or pino options (buildServer and createRequestHandler). */
  logger?: boolean | object;
  /** Largest request body in bytes; default 1 MiB. */
  bodyLimit?: number;
  /** The live stream's heartbeat and per-connection send buffer (docs/live-protocol.md). */
  live?: { heartbeatMs?: number; maxBufferBytes?: number };
  /** Serve the dashboard at the prefix's root (default true), or the one built in this folder. */
  dashboard?: boolean | string;
};

/** The plugin's options: the server's, less what only a whole server can set. */
export type ConveyorRoutesOptions = Omit<ServerOptions, "logger">;

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Ajv as the API wants it: no coercion (query and path text is turned into numbers by coerceTextParts). */
const AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, allowUnionTypes: true } as const;

/** Fastify's settings for a server that carries Conveyor's routes at its root, or only them. */
function serverSettings(options: ServerOptions): FastifyServerOptions {
  return {
    logger: redactedLogger(options.logger ?? false) as FastifyServerOptions["logger"],
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // A queue name may be 128 characters; longer params are refused by frameworkErrors as a 400.
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    ajv: { customOptions: AJV_OPTIONS },
  };
}

/**
 * Every route of a Conveyor node, as a Fastify plugin: register it under a prefix (or none) in any Fastify 5 app.
 * Add `routerOptions: { maxParamLength: 256 }` to the host app for queue names over 100 characters.
 */
export const conveyorRoutes: FastifyPluginAsync<ConveyorRoutesOptions> = async (app, options) => {
  const { conveyor } = options;
  const validators = AjvCompiler()(Object.fromEntries(SHARED_SCHEMAS.map((s) => [s.$id, s])), {
    customOptions: AJV_OPTIONS,
  });
  app.setValidatorCompiler(validators);
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  app.addHook("onRoute", (route) => {
    route.bodyLimit ??= bodyLimit;
  });
  // The dashboard's page answers the app's deep links (/tasks/42) where no route does.
  const dashboard =
    options.dashboard === false
      ? null
      : registerDashboardRoutes(app, {
          conveyor,
          ...(typeof options.dashboard === "string" ? { root: options.dashboard } : {}),
        });
  installErrorHandlers(app, conveyor.logger, dashboard?.fallback);
  installJsonParser(app);
  const tokens: Tokens = {
    admin: tokenOrNull(options.adminToken),
    write: tokenOrNull(options.token),
    read: tokenOrNull(options.readToken),
  };
  // In this order: headers on every answer (refusals too), CORS (preflights answer before the token check), the
  // rate limit (so that refused token guesses count), then the token check.
  installSecurityHeaders(app);
  await installCors(app, options.corsOrigins);
  await installRateLimit(app, tokens, options.rateLimit ?? DEFAULT_RATE_LIMIT);
  installAuth(app, tokens);
  installStorableText(app);
  app.addHook("preValidation", async (request) => coerceTextParts(request));
  const metrics = createMetrics(conveyor);
  installRequestMetrics(app, metrics);
  // Requests waiting for a task (?wait=N) answer at once when the server closes, rather than holding it open.
  const closing = new AbortController();
  app.addHook("preClose", async () => closing.abort());

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Conveyor",
        version: conveyor.options.version,
        description: "Durable tasks: add, watch, stop, retry. Errors: docs/errors.md.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      tags: [
        { name: "tasks", description: "Tasks and their results" },
        { name: "queues", description: "Queues: counts, pause and resume" },
        { name: "schedules", description: "Cron schedules" },
        { name: "node", description: "This node, the cluster, health and metrics" },
        { name: "meta", description: "This API's description" },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  // The route modules, one call each (paths are relative to the prefix).
  registerTaskRoutes(app, { conveyor, closing: closing.signal });
  registerQueueRoutes(app, { conveyor });
  registerScheduleRoutes(app, { conveyor });
  registerNodeRoutes(app, { conveyor, metrics, tokens });
  registerStatsRoutes(app, { conveyor });
  registerFaultRoutes(app, { conveyor });
  registerPostofficeRoutes(app, { conveyor });
  registerDispatchRoutes(app, { conveyor });
  await registerLiveRoutes(app, { node: conveyor.live, tokens, ...options.live });
  app.get(
    "/api/openapi.json",
    {
      schema: { summary: "This API as an OpenAPI 3.1 document", tags: ["meta"] },
    },
    async () => app.swagger(),
  );
};

/** The node's own server: Conveyor's routes at the root of a Fastify app, not yet listening. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify(serverSettings(options));
  await app.register(conveyorRoutes, options);
  return app;
}

/** A `node:http` request handler that serves Conveyor's routes under `prefix`; see createRequestHandler. */
export type ConveyorRequestHandler = {
  /**
   * Serves a request under the prefix. Any other request goes to `next` when given, else gets a 404. Returns
   * whether the request was Conveyor's.
   */
  (request: IncomingMessage, response: ServerResponse, next?: () => void): boolean;
  /** For a server's `upgrade` event: takes the live stream's WebSocket upgrades under the prefix; false otherwise. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Listens to `server`'s upgrades for the live stream (other upgrades are left to the server's other listeners). */
  attach(server: Server): void;
  /** The Fastify app behind it (for `inject` in tests, or its logger). */
  readonly app: FastifyInstance;
  /** Closes the live stream's connections and waiting requests; call it before stopping the Conveyor. */
  close(): Promise<void>;
};

/**
 * Conveyor's routes (API, live stream, dashboard) for any `node:http` server, under `prefix` (`"/conveyor"`, or
 * `""` for the root):
 *
 *   const conveyorHandler = await createRequestHandler({ conveyor, prefix: "/conveyor" });
 *   const server = http.createServer((req, res) => conveyorHandler(req, res, () => myApp(req, res)));
 *   conveyorHandler.attach(server); // the live stream's WebSocket
 */
export async function createRequestHandler(
  options: ServerOptions & { prefix?: string },
): Promise<ConveyorRequestHandler> {
  const prefix = normalizePrefix(options.prefix ?? "");
  // Fastify needs a server to hang the WebSocket plugin's upgrade listener on: one that never listens, fed by
  // `upgrade` below.
  let inner: Server | undefined;
  const app = Fastify({
    ...serverSettings(options),
    serverFactory: (handler) => (inner = createServer(handler)),
  });
  await app.register(conveyorRoutes, { ...options, prefix });
  await app.ready();
  const mine = (request: IncomingMessage) => {
    const path = (request.url ?? "/").split("?")[0]!;
    return prefix === "" || path === prefix || path.startsWith(`${prefix}/`);
  };
  const handler = ((request: IncomingMessage, response: ServerResponse, next?: () => void): boolean => {
    if (!mine(request)) {
      if (next !== undefined) next();
      else response.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return false;
    }
    app.routing(request, response);
    return true;
  }) as ConveyorRequestHandler;
  handler.upgrade = (request, socket, head) => {
    if (!mine(request)) return false;
    inner!.emit("upgrade", request, socket, head);
    return true;
  };
  handler.attach = (server) => {
    server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Another upgrade, with no other listener to take it, would hang: refuse it.
      if (!handler.upgrade(request, socket, head) && server.listenerCount("upgrade") === 1) socket.destroy();
    });
  };
  Object.defineProperty(handler, "app", { value: app });
  handler.close = () => app.close();
  return handler;
}

/** `"conveyor/"` → `"/conveyor"`; `"/"` → `""`. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, "");
  if (trimmed === "") return "";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

/**
 * Fastify's JSON parser (with its prototype-poisoning guard), except that an empty body is no body:
 * clients often send `Content-Type: application/json` on a POST that carries nothing, such as a retry.
 * Only JSON is accepted; any other content type is a 415.
 */
function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.length === 0) return done(null, undefined);
    parseJson(request, text, done);
  });
}

type PartSchema = { properties?: Record<string, { type?: unknown }> };

/** Turn the text of query and path values into what the route's schema declares, ahead of validation. */
export function coerceTextParts(request: FastifyRequest): void {
  const schema = request.routeOptions.schema;
  if (schema === undefined) return;
  coercePart(request.query as Record<string, unknown>, schema.querystring as PartSchema | undefined);
  coercePart(request.params as Record<string, unknown>, schema.params as PartSchema | undefined);
}

const INTEGER_TEXT = /^-?[0-9]{1,400}$/;

function coercePart(values: Record<string, unknown> | undefined, schema: PartSchema | undefined): void {
  if (values === undefined || values === null || schema?.properties === undefined) return;
  for (const [name, value] of Object.entries(values)) {
    const type = schema.properties[name]?.type;
    if (type === "integer" && typeof value === "string" && INTEGER_TEXT.test(value)) {
      // Beyond 2^53 the number is inexact, but still above every schema maximum, so it fails as it should.
      values[name] = Number(value);
    } else if (type === "array") {
      // `?state=a,b` and `?state=a&state=b` mean the same.
      values[name] = (Array.isArray(value) ? value : [value]).flatMap((item) => String(item).split(","));
    }
  }
}

function tokenOrNull(token: string | null | undefined): string | null {
  return token === undefined || token === null || token === "" ? null : token;
}
