/**
 * The HTTP API of a Conveyor node on Fastify. `buildServer` assembles it and returns it without listening;
 * the CLI (or a test) calls `app.listen`.
 *
 * Validation: one Ajv instance with coercion OFF, so a body's `"priority": "5"` is a 400, and unknown body
 * properties are rejected rather than stripped. Query strings and path params are text by nature: a
 * preValidation hook turns the ones the route's schema declares as integers (or lists) into numbers (or
 * arrays) first, and the same schemas then check them.
 */
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from "fastify";
import swagger from "@fastify/swagger";
import type { Conveyor } from "../runtime/conveyor.ts";
import { installAuth } from "./auth.ts";
import { frameworkErrorHandler, installErrorHandlers } from "./errors.ts";
import { createMetrics, installRequestMetrics } from "./metrics.ts";
import { registerNodeRoutes } from "./routes/node.ts";
import { registerHomeRoute } from "./routes/home.ts";
import { registerQueueRoutes } from "./routes/queues.ts";
import { registerScheduleRoutes } from "./routes/schedules.ts";
import { registerTaskRoutes } from "./routes/tasks.ts";
import { SHARED_SCHEMAS } from "./schemas.ts";
import { registerLiveRoutes } from "../realtime/routes.ts";

export type ServerOptions = {
  conveyor: Conveyor;
  /** When set, writes (POST, PUT, PATCH, DELETE) need `Authorization: Bearer <token>`. */
  token?: string | null;
  /** Fastify's logger option: false (default), true, or pino options. */
  logger?: boolean | object;
  /** Largest request body in bytes; default 1 MiB. */
  bodyLimit?: number;
  /** The live stream's heartbeat and per-connection send buffer (docs/live-protocol.md). */
  live?: { heartbeatMs?: number; maxBufferBytes?: number };
};

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { conveyor } = options;
  const app = Fastify({
    logger: (options.logger ?? false) as FastifyServerOptions["logger"],
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // A queue name may be 128 characters; longer params are refused by frameworkErrors as a 400.
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: frameworkErrorHandler,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allowUnionTypes: true } },
  });

  installErrorHandlers(app);
  installJsonParser(app);
  installAuth(app, options.token);
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

  registerTaskRoutes(app, { conveyor, closing: closing.signal });
  registerHomeRoute(app, { conveyor });
  registerQueueRoutes(app, { conveyor });
  registerScheduleRoutes(app, { conveyor });
  registerNodeRoutes(app, { conveyor, metrics });
  const apiToken = options.token === undefined || options.token === "" ? null : options.token;
  await registerLiveRoutes(app, { node: conveyor.live, apiToken, ...options.live });
  app.get(
    "/api/openapi.json",
    {
      schema: { summary: "This API as an OpenAPI 3.1 document", tags: ["meta"] },
    },
    async () => app.swagger(),
  );
  return app;
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
