/**
 * A per-client rate limit on the requests that carry no valid token (@fastify/rate-limit, counted per IP address in
 * this node's memory): whoever holds a token is trusted and never limited; whoever does not may not guess tokens, nor
 * flood the open reads, faster than the limit. It applies only when the node has at least one token: on a node with
 * none, every request is as trusted as any other, and a limit would only get in the way of the tools on it.
 *
 * It runs first among the onRequest hooks (installed before the auth check), so requests refused with a 401 count
 * too. Health checks are exempt (load balancers poll them, often all from one address). Over the limit: 429
 * `rate_limited`, with Retry-After in seconds.
 */
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { bearerToken } from "../core/bearer.ts";
import { ConveyorError } from "../core/errors.ts";
import { hasTokens, isValidToken, type Tokens } from "./auth.ts";

/** Requests per minute per client without a valid token, unless configured (CONVEYOR_RATE_LIMIT). */
export const DEFAULT_RATE_LIMIT = 600;

const EXEMPT_PATHS = new Set(["/api/health"]);
/** Where a token may come in the query string (a browser's WebSocket and EventSource cannot set headers). */
const QUERY_TOKEN_PATHS = new Set(["/api/live", "/api/live/sse"]);

/** `perMinute`: requests a minute per client; 0 turns the limit off. */
export async function installRateLimit(app: FastifyInstance, tokens: Tokens, perMinute: number): Promise<void> {
  if (perMinute === 0 || !hasTokens(tokens)) return;
  const prefix = app.prefix;
  const exempt = (request: FastifyRequest) => {
    const path = request.url.split("?")[0]!.slice(prefix.length);
    if (EXEMPT_PATHS.has(path)) return true;
    let given = bearerToken(request.headers.authorization);
    if (given === null && QUERY_TOKEN_PATHS.has(path)) {
      const token = (request.query as { token?: unknown } | undefined)?.token;
      if (typeof token === "string") given = token;
    }
    return isValidToken(tokens, given);
  };
  const settings = {
    global: false,
    max: perMinute,
    timeWindow: 60_000,
    allowList: exempt,
    errorResponseBuilder: (_request: FastifyRequest, context: { after: string }) =>
      new ConveyorError(
        "rate_limited",
        `too many requests without a valid token from this address; retry in ${context.after}`,
      ),
  };
  await app.register(rateLimit, settings);
  app.addHook("onRequest", app.rateLimit(settings));
}
