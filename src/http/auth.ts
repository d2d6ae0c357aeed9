/**
 * Optional bearer token for writes. With a token configured, every POST, PUT, PATCH and DELETE must carry
 * `Authorization: Bearer <token>`; reads stay open. The check runs in onRequest, before the body is read,
 * so an unauthenticated request cannot make the server parse (or reject) its body first.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bearerToken, tokenMatches } from "../core/bearer.ts";
import type { ErrorBody } from "./errors.ts";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

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
