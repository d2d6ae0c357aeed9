/**
 * Bearer tokens, in two scopes. With a write token set (CONVEYOR_TOKEN), every POST, PUT, PATCH and DELETE needs
 * `Authorization: Bearer <it>` (401 without, 403 forbidden with the read token). With a read token set too
 * (CONVEYOR_READ_TOKEN), the API's reads need one of the two; without one, reads stay open. The page of the
 * dashboard and its assets, health checks, `/api/whoami` and the live stream's endpoints (they check tokens per
 * channel themselves) need none. The check runs in onRequest, before the body is read, so an unauthenticated
 * request cannot make the server parse (or reject) its body first.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bearerToken, tokenMatches } from "../core/bearer.ts";
import type { ErrorBody } from "./errors.ts";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** API paths (after the prefix) that check tokens themselves, or must answer whoever asks. */
const OPEN_PATHS = new Set(["/api/health", "/api/whoami", "/api/live", "/api/live/sse", "/api/live/client.js"]);

export type Tokens = { write: string | null; read: string | null };
export type Scope = "none" | "read" | "write";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Set by installAuth on the API's reads that a read token guards. */
    conveyorRead?: boolean;
  }
}

/** What the request's bearer token allows. With no write token set, anyone may write. */
export function scopeOf(tokens: Tokens, authorization: string | undefined): Scope {
  const given = bearerToken(authorization);
  if (tokens.write === null) return "write";
  if (given !== null && tokenMatches(tokens.write, given)) return "write";
  if (given !== null && tokens.read !== null && tokenMatches(tokens.read, given)) return "read";
  return "none";
}

export function installAuth(app: FastifyInstance, tokens: Tokens): void {
  if (tokens.write === null && tokens.read === null) return;
  // Say so in the OpenAPI document too (this hook runs before @fastify/swagger's, which reads the schema).
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const path = route.url.slice(route.prefix.length) || "/";
    const guarded = methods.some((m) => WRITE_METHODS.has(m)) || (tokens.read !== null && isGuardedRead(path));
    if (route.schema !== undefined && guarded) route.schema = { ...route.schema, security: [{ bearer: [] }] };
    if (tokens.read !== null && isGuardedRead(path)) route.config = { ...route.config, conveyorRead: true };
  });
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    const write = WRITE_METHODS.has(request.method);
    if (!write && request.routeOptions.config.conveyorRead !== true) return;
    const scope = scopeOf(tokens, request.headers.authorization);
    if (scope === "write" || (!write && scope === "read")) return;
    if (scope === "read") return refuse(reply, 403, "forbidden", "this token may read, not write");
    const given = bearerToken(request.headers.authorization);
    return refuse(
      reply,
      401,
      "unauthorized",
      given === null ? "this endpoint needs Authorization: Bearer <token>" : "the token is wrong",
    );
  });
}

function isGuardedRead(path: string): boolean {
  return (path.startsWith("/api/") || path === "/metrics") && !OPEN_PATHS.has(path);
}

function refuse(reply: FastifyReply, status: 401 | 403, code: "unauthorized" | "forbidden", message: string) {
  const body: ErrorBody = { error: { code, message } };
  if (status === 401) reply.header("www-authenticate", 'Bearer realm="conveyor"');
  return reply.code(status).send(body);
}
