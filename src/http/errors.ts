/**
 * One shape for every error the API returns: `{ error: { code, message, details? } }` with a code from
 * ERROR_CODES (docs/errors.md). ConveyorErrors carry their own code and status; Fastify's errors (bad JSON,
 * schema validation, body limits, content types, bad URLs) are translated; a store that is down, unreachable or
 * locked is a 503 `store_unavailable` with a Retry-After; anything else is a 500 that says nothing about the
 * server's insides, and is logged.
 */
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { ConveyorError, ERROR_CODES, type ErrorCode } from "../core/errors.ts";
import { isStoreUnavailable } from "../core/store-unavailable.ts";

export type ErrorBody = { error: { code: ErrorCode; message: string; details?: unknown } };

export type HttpError = { status: number; body: ErrorBody };

/** Seconds a client is asked to wait before trying again when the store is unavailable. */
export const STORE_RETRY_AFTER_S = 2;

/** Fastify's error codes that are the client's doing, and what we call them. */
const FASTIFY_CODES: Record<string, { code: ErrorCode; message?: string }> = {
  // Fastify's parser refuses prototype keys with the same error as broken JSON, and does not say which it was.
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: "invalid_json",
    message: "the body is not valid JSON, or has a __proto__ or constructor.prototype key",
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: "invalid_json", message: "the body is empty" },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: "payload_too_large" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: "unsupported_media_type", message: "the body must be application/json" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: "validation_failed", message: "Content-Length does not match the body" },
  FST_ERR_BAD_URL: { code: "validation_failed", message: "the URL is malformed" },
  FST_ERR_MAX_PARAM_LENGTH: { code: "validation_failed", message: "a path parameter is too long" },
  FST_ERR_ASYNC_CONSTRAINT: { code: "validation_failed" },
};

type ValidationProblem = { in: string; field: string; message: string };

type AjvIssue = { instancePath: string; keyword: string; params: Record<string, unknown>; message?: string };

/** Translate any thrown value into a status and our error body. */
export function toHttpError(error: unknown): HttpError {
  // Before ConveyorError: a store's own StoreUnavailableError is one, and its message says what the store saw.
  if (isStoreUnavailable(error)) {
    const message = error instanceof ConveyorError ? error.message : "the store does not answer; try again shortly";
    return reply(503, "store_unavailable", message);
  }
  if (error instanceof ConveyorError) {
    return reply(error.status, error.code, error.message, error.details);
  }
  const fastify = error as Partial<FastifyError> & { validation?: AjvIssue[]; validationContext?: string };
  if (Array.isArray(fastify.validation)) {
    const problems = fastify.validation.map((issue) => describeIssue(fastify.validationContext ?? "request", issue));
    const message = problems.map((p) => `${p.in}${p.field === "" ? "" : `.${p.field}`} ${p.message}`).join("; ");
    return reply(400, "validation_failed", message, problems);
  }
  const known = typeof fastify.code === "string" ? FASTIFY_CODES[fastify.code] : undefined;
  if (known !== undefined) {
    return reply(ERROR_CODES[known.code], known.code, known.message ?? fastify.message ?? known.code);
  }
  // A 4xx from a plugin or parser we did not list is still the client's doing: keep it out of the 500s.
  if (typeof fastify.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    const code: ErrorCode =
      fastify.statusCode === 413
        ? "payload_too_large"
        : fastify.statusCode === 415
          ? "unsupported_media_type"
          : "validation_failed";
    return reply(ERROR_CODES[code], code, fastify.message ?? "bad request");
  }
  return reply(500, "internal_error", "internal server error");
}

function reply(status: number, code: ErrorCode, message: string, details?: unknown): HttpError {
  const body: ErrorBody = { error: { code, message } };
  if (details !== undefined) body.error.details = details;
  return { status, body };
}

/** An Ajv issue as a field path (`tasks.3.priority`) and a sentence, naming the property when Ajv knows it. */
function describeIssue(part: string, issue: AjvIssue): ValidationProblem {
  let field = issue.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
  let message = issue.message ?? "is invalid";
  const join = (name: unknown) => (field === "" ? String(name) : `${field}.${String(name)}`);
  if (issue.keyword === "additionalProperties") {
    field = join(issue.params.additionalProperty);
    message = "is not allowed";
  } else if (issue.keyword === "required") {
    field = join(issue.params.missingProperty);
    message = "is required";
  } else if (issue.keyword === "enum" && Array.isArray(issue.params.allowedValues)) {
    message = `must be one of ${issue.params.allowedValues.join(", ")}`;
  }
  return { in: part, field, message };
}

/**
 * Install the error and not-found handlers on `app`; `fallback` may answer a request no route matched first (the
 * dashboard's page for its deep links), and says whether it did.
 */
export function installErrorHandlers(
  app: FastifyInstance,
  /** The node's own logger: a server built without request logging (the CLI's) still records its 500s. */
  log: Pick<Logger, "warn" | "error">,
  fallback?: (request: FastifyRequest, response: FastifyReply) => boolean,
): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, response: FastifyReply) => {
    const { status, body } = toHttpError(error);
    const where = { method: request.method, url: request.url.split("?")[0] };
    if (body.error.code === "store_unavailable") {
      // Expected while the store is away, and every request says so: a warning, not a stack trace each.
      log.warn({ ...where, err: error instanceof Error ? error.message : String(error) }, "store unavailable");
      void response.header("retry-after", String(STORE_RETRY_AFTER_S));
    } else if (status >= 500) log.error({ ...where, err: error }, "request failed");
    return response.code(status).send(body);
  });
  app.setNotFoundHandler((request: FastifyRequest, response: FastifyReply) => {
    if (fallback?.(request, response)) return response;
    const { status, body } = reply(404, "not_found", `no route for ${request.method} ${request.url.split("?")[0]}`);
    return response.code(status).send(body);
  });
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (headers over 16 KiB, a malformed request line),
 * answered in our shape rather than Fastify's default body. The connection closes after it, as Node requires.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const body = JSON.stringify(
    tooLarge
      ? { error: { code: "headers_too_large", message: "the URL and headers are over 16 KiB" } }
      : { error: { code: "validation_failed", message: "the request is malformed" } },
  );
  socket.end(
    `HTTP/1.1 ${tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request"}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** For Fastify's `frameworkErrors` option: errors raised before routing (bad URL encoding, over-long params). */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, response: FastifyReply): void {
  const { status, body } = toHttpError(error);
  void response.code(status).header("content-type", "application/json; charset=utf-8").send(JSON.stringify(body));
}
