/**
 * Tokens never reach the logs. Fastify logs each request's method and URL (not its headers): the URL is logged with
 * the values of `token` (the live stream's WebSocket and SSE take one in the query string) and `secret` replaced,
 * and pino's redaction blanks the Authorization header and cookies for any serializer that logs headers anyway.
 */
import type { FastifyRequest } from "fastify";

const REDACT = ["req.headers.authorization", "req.headers.cookie", 'req.headers["x-api-key"]'];
const SECRET_QUERY = /([?&](?:token|secret|access_token)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, "$1[redacted]");
}

function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

type LoggerOptions = { serializers?: Record<string, unknown>; redact?: unknown } & Record<string, unknown>;

/** Fastify's `logger` option with the redaction added: false stays false; true becomes options. */
export function redactedLogger(logger: boolean | object): boolean | object {
  if (logger === false) return false;
  const options: LoggerOptions = logger === true ? {} : { ...(logger as LoggerOptions) };
  const redact = options.redact;
  const paths = Array.isArray(redact) ? redact : (redact as { paths?: string[] } | undefined)?.paths;
  return {
    ...options,
    serializers: { ...options.serializers, req: serializeRequest },
    redact:
      redact !== null && typeof redact === "object" && !Array.isArray(redact)
        ? { ...redact, paths: [...REDACT, ...(paths ?? [])] }
        : [...REDACT, ...(paths ?? [])],
  };
}
