/**
 * Bearer tokens, in three scopes, each containing the one below: admin ⊃ write ⊃ read.
 *
 * - With a write token set (CONVEYOR_TOKEN), every POST, PUT, PATCH and DELETE needs `Authorization: Bearer <it>`
 *   (401 without, 403 forbidden with the read token).
 * - With an admin token set too (CONVEYOR_ADMIN_TOKEN), the routes of ADMIN_ROUTES (fault injection, deleting,
 *   changing concurrency) need it: the write token gets 403 there. Without one, the write token may do them, as
 *   before there was an admin scope.
 * - With a read token set (CONVEYOR_READ_TOKEN), the API's reads need one of the three; without one, reads stay open.
 *
 * The page of the dashboard and its assets, health checks, `/api/whoami` and the live stream's endpoints (they check
 * tokens per channel themselves) need none. The check runs in onRequest, before the body is read, so an
 * unauthenticated request cannot make the server parse (or reject) its body first; only the admin rules that depend
 * on the body (a bulk delete) run once it is read, for a caller already known to hold the write token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bearerToken, tokenMatches } from "../core/bearer.ts";
import type { ErrorBody } from "./errors.ts";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** API paths (after the prefix) that check tokens themselves, or must answer whoever asks. */
const OPEN_PATHS = new Set(["/api/health", "/api/whoami", "/api/live", "/api/live/sse", "/api/live/client.js"]);

/**
 * The routes that need the admin scope where an admin token is set, by `METHOD path` (the route's path after the
 * prefix): the ones that destroy data or change how the cluster runs, rather than add or steer work. A function
 * decides from the (parsed, validated) body. Cancelling a task (DELETE /api/tasks/{id}) keeps its row and is a write.
 */
export const ADMIN_ROUTES: Record<string, true | ((body: unknown) => boolean)> = {
  "POST /api/faults": true,
  "PUT /api/queues/:name/concurrency": true,
  "DELETE /api/schedules/:name": true,
  "POST /api/tasks/actions": (body) => (body as { action?: unknown } | null)?.action === "delete",
  // Dispatch (Postoffice's API): deleting a publisher.
  "DELETE /api/publishers/:id": true,
};

export type Tokens = { admin: string | null; write: string | null; read: string | null };
export type Scope = "none" | "read" | "write" | "admin";

const RANK: Record<Scope, number> = { none: 0, read: 1, write: 2, admin: 3 };

/** No tokens at all: a development node, open to all. */
export const NO_TOKENS: Tokens = { admin: null, write: null, read: null };

/**
 * Which token the request's bearer token is. With no write token set, anyone may write (and, with no admin token
 * either, do what admin would).
 */
export function scopeOf(tokens: Tokens, authorization: string | undefined): Scope {
  return scopeOfToken(tokens, bearerToken(authorization));
}

export function scopeOfToken(tokens: Tokens, given: string | null): Scope {
  if (given !== null && tokens.admin !== null && tokenMatches(tokens.admin, given)) return "admin";
  if (tokens.write === null) return "write";
  if (given !== null && tokenMatches(tokens.write, given)) return "write";
  if (given !== null && tokens.read !== null && tokenMatches(tokens.read, given)) return "read";
  return "none";
}

/** Whether a caller of `scope` may do what needs `needed`; without an admin token, write does admin's things. */
export function allows(tokens: Tokens, scope: Scope, needed: Scope): boolean {
  const effective = needed === "admin" && tokens.admin === null ? "write" : needed;
  return RANK[scope] >= RANK[effective];
}

/** Whether the token presented is one of the node's (what exempts a request from the rate limit). */
export function isValidToken(tokens: Tokens, given: string | null): boolean {
  if (given === null) return false;
  return [tokens.admin, tokens.write, tokens.read].some((token) => token !== null && tokenMatches(token, given));
}

export function hasTokens(tokens: Tokens): boolean {
  return tokens.admin !== null || tokens.write !== null || tokens.read !== null;
}

/** The scope a route needs before its body is read (`path` after the prefix, undefined when no route matched). */
export function requiredScope(tokens: Tokens, method: string, path: string | undefined): Scope {
  if (WRITE_METHODS.has(method))
    return path !== undefined && ADMIN_ROUTES[`${method} ${path}`] === true ? "admin" : "write";
  if (path !== undefined && tokens.read !== null && isGuardedRead(path)) return "read";
  return "none";
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The scope the route needs before its body is read, set by installAuth. */
    conveyorScope?: Scope;
  }
}

export function installAuth(app: FastifyInstance, tokens: Tokens): void {
  if (!hasTokens(tokens)) return;
  // Say so in the OpenAPI document too (this hook runs before @fastify/swagger's, which reads the schema): the
  // security requirement lists the scope needed as its role (OpenAPI 3.1 allows roles for any scheme).
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const path = route.url.slice(route.prefix.length) || "/";
    const needed = methods
      .map((method) => requiredScope(tokens, method, path))
      .reduce<Scope>((a, b) => (RANK[b] > RANK[a] ? b : a), "none");
    const bodyRule = methods.some((method) => typeof ADMIN_ROUTES[`${method} ${path}`] === "function");
    route.config = { ...route.config, conveyorScope: needed };
    if (route.schema !== undefined && needed !== "none") {
      const roles = bodyRule ? [needed, "admin"] : [needed];
      route.schema = { ...route.schema, security: [{ bearer: roles }] };
    }
  });
  const check = (request: FastifyRequest, reply: FastifyReply, needed: Scope) => {
    const given = bearerToken(request.headers.authorization);
    const scope = scopeOfToken(tokens, given);
    if (allows(tokens, scope, needed)) return;
    if (isValidToken(tokens, given)) return refuse(reply, 403, "forbidden", forbiddenMessage(scope, needed));
    return refuse(
      reply,
      401,
      "unauthorized",
      given === null ? "this endpoint needs Authorization: Bearer <token>" : "the token is wrong",
    );
  };
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    // No route matched: writes still need the write token (an unknown path is no way around it).
    const needed = request.routeOptions.config.conveyorScope ?? requiredScope(tokens, request.method, undefined);
    if (needed !== "none") return check(request, reply, needed);
  });
  if (tokens.admin === null) return;
  // The admin rules that depend on the body, once it is parsed and valid.
  app.addHook("preHandler", async (request: FastifyRequest, reply: FastifyReply) => {
    const rule = ADMIN_ROUTES[`${request.method} ${routePath(app, request)}`];
    if (typeof rule === "function" && rule(request.body)) return check(request, reply, "admin");
  });
}

function routePath(app: FastifyInstance, request: FastifyRequest): string | undefined {
  return request.routeOptions.url?.slice(app.prefix.length);
}

function forbiddenMessage(scope: Scope, needed: Scope): string {
  return needed === "admin"
    ? `this needs the admin token; this token may only ${scope === "read" ? "read" : "read and write"}`
    : "this token may read, not write";
}

function isGuardedRead(path: string): boolean {
  return (path.startsWith("/api/") || path === "/metrics") && !OPEN_PATHS.has(path);
}

function refuse(reply: FastifyReply, status: 401 | 403, code: "unauthorized" | "forbidden", message: string) {
  const body: ErrorBody = { error: { code, message } };
  if (status === 401) reply.header("www-authenticate", 'Bearer realm="conveyor"');
  return reply.code(status).send(body);
}
