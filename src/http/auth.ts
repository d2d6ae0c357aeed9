/**
 * Optional bearer token for writes. With a token configured, every POST, PUT, PATCH and DELETE must carry
 * `Authorization: Bearer <token>`; reads stay open. The check runs in onRequest, before the body is read,
 * so an unauthenticated request cannot make the server parse (or reject) its body first.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ErrorBody } from "./errors.ts";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Compares in constant time, whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null. The scheme is case-insensitive. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match === null ? null : match[1]!;
}

export function installAuth(app: FastifyInstance, token: string | null | undefined): void {
  if (token === null || token === undefined || token === "") return;
  // Say so in the OpenAPI document too (this hook runs before @fastify/swagger's, which reads the schema).
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.schema !== undefined && methods.some((m) => WRITE_METHODS.has(m)))
      route.schema = { ...route.schema, security: [{ bearer: [] }] };
  });
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (!WRITE_METHODS.has(request.method)) return;
    const given = bearerToken(request.headers.authorization);
    if (given !== null && tokenMatches(token, given)) return;
    const body: ErrorBody = {
      error: {
        code: "unauthorized",
        message: given === null ? "this endpoint needs Authorization: Bearer <token>" : "the token is wrong",
      },
    };
    return reply.code(401).header("www-authenticate", 'Bearer realm="conveyor"').send(body);
  });
}
