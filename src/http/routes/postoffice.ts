/**
 * Postoffice's API, as its clients know it (CONTRACTS §D.3): paths, bodies, status codes and error bodies, odd ones
 * included: `{"data":{"errors":{field:[message]}}}` for a bad field (Ecto's words), 409 for a name or target taken,
 * `{"id":[…]}` without `data` for a message (one id per delivery, as Postoffice gave one job id per publisher),
 * `{"result":[…]}` for a bulk, 406 for a bulk over MAX_BULK_MESSAGES or to an unknown topic, 400 `"Anything has
 * wrong"` for a publisher that cannot be deleted. Whatever else goes wrong with a request on these paths (a body that
 * is not JSON, too large) keeps its status and is said in the same shape. GET /api/health is the node's
 * (routes/node.ts): its `status` is "ok" or "ko", as Postoffice's.
 *
 * Fixed where Postoffice was broken: a `schedule_at` without a time zone is a 400 (it crashed), an http target must
 * be an http(s) URL, a deleted publisher's target can be used again, and `pubsub` publishers go to AMQP (no cloud
 * here). Added: `Idempotency-Key` on messages, and `secret` (a whsec_ secret, or true to have one made) on publishers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ConflictError, ValidationError } from "../../core/errors.ts";
import type { Json } from "../../core/task.ts";
import { Dispatch } from "../../dispatch/dispatch.ts";
import { INVALID, type Problem, TAKEN } from "../../dispatch/inputs.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";
import { toHttpError } from "../errors.ts";

const tags = ["postoffice"];
const DELETE_REFUSED = "Anything has wrong";

type Body = Record<string, unknown>;

export function registerPostofficeRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  const dispatch = Dispatch.of(conveyor);
  const route = (summary: string) => ({ schema: { summary, tags }, errorHandler: postofficeError });

  app.post<{ Body: Body }>("/api/topics", route("Create a topic (Postoffice)"), async (request, reply) => {
    try {
      const topic = await dispatch.createTopic(bodyOf(request));
      return reply.code(201).send({ data: { id: topic.id, name: topic.name } });
    } catch (error) {
      if (error instanceof ConflictError) return reply.code(409).send(fieldErrors([problem("name", TAKEN)]));
      throw error;
    }
  });

  app.post<{ Body: Body }>("/api/publishers", route("Create a publisher (Postoffice)"), async (request, reply) => {
    try {
      const body = bodyOf(request);
      const publisher = await dispatch.createPublisher(body);
      reply.header("location", `/api/publishers/${publisher.id}`);
      // Postoffice answered an empty object; a secret made for the caller is the one thing it must learn here.
      const data = body.secret === true ? { secret: publisher.secrets[0]!.secret } : {};
      return reply.code(201).send({ data });
    } catch (error) {
      if (error instanceof ConflictError) return reply.code(409).send(fieldErrors([problem("target", TAKEN)]));
      throw error;
    }
  });

  app.delete<{ Params: { id: string } }>(
    "/api/publishers/:id",
    route("Delete a publisher: it sends nothing more, its waiting deliveries are discarded (Postoffice)"),
    async (request, reply) => {
      const id = /^[1-9][0-9]{0,15}$/.test(request.params.id) ? Number(request.params.id) : null;
      const deleted = id === null ? null : await dispatch.deletePublisher(id);
      if (deleted === null) return reply.code(400).send({ data: { errors: DELETE_REFUSED } });
      return reply.code(204).send();
    },
  );

  app.post<{ Body: Body }>("/api/messages", route("Send a message to a topic (Postoffice)"), async (request, reply) => {
    const body = bodyOf(request);
    const outcome = await send(dispatch, request, body, [
      { payload: body.payload as Json, attributes: attributes(body) },
    ]);
    return reply.code(201).send({ id: outcome.deliveryIds });
  });

  app.post<{ Body: Body }>(
    "/api/bulk_messages",
    route("Send many messages to a topic in one transaction (Postoffice)"),
    async (request, reply) => {
      const body = bodyOf(request);
      const payloads = body.payload;
      if (Array.isArray(payloads) && payloads.length > dispatch.options.maxBulkMessages)
        return reply.code(406).send({ data: { errors: "Exceed max messages to ingest in bulk" } });
      if (typeof body.topic !== "string" || (await topicMissing(dispatch, body.topic)))
        return reply.code(406).send({ data: { errors: "Topic does not exist" } });
      if (!Array.isArray(payloads) || payloads.length === 0)
        return reply.code(400).send(fieldErrors([problem("payload", INVALID)]));
      const inputs = payloads.map((payload) => ({ payload: payload as Json, attributes: attributes(body) }));
      const outcome = await send(dispatch, request, body, inputs);
      return reply.code(201).send({ result: outcome.deliveryIds });
    },
  );

  app.post<{ Body: Body }>(
    "/api/schedule_messages",
    route("Send a message to be delivered at schedule_at (Postoffice)"),
    async (request, reply) => {
      const body = bodyOf(request);
      const at = typeof body.schedule_at === "string" ? parseInstant(body.schedule_at) : null;
      if (at === null) return reply.code(400).send(fieldErrors([problem("schedule_at", INVALID)]));
      const input = [{ payload: body.payload as Json, attributes: attributes(body) }];
      const outcome = await send(dispatch, request, body, input, at);
      return reply.code(201).send({ id: outcome.deliveryIds });
    },
  );
}

async function send(
  dispatch: Dispatch,
  request: FastifyRequest,
  body: Body,
  inputs: { payload: Json; attributes: { [key: string]: Json } }[],
  scheduleAt?: Date,
) {
  const key = request.headers["idempotency-key"];
  if (typeof body.topic !== "string" || body.topic === "")
    throw new ValidationError("topic is required", [problem("topic", INVALID)]);
  return dispatch.send(body.topic, inputs, {
    idempotencyKey: typeof key === "string" && key !== "" ? key.slice(0, 255) : null,
    ...(scheduleAt === undefined ? {} : { scheduleAt }),
  });
}

async function topicMissing(dispatch: Dispatch, name: string): Promise<boolean> {
  try {
    await dispatch.topic(name);
    return false;
  } catch {
    return true;
  }
}

function bodyOf(request: FastifyRequest): Body {
  const body = request.body;
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new ValidationError("the body must be a JSON object", [problem("body", INVALID)]);
  return body as Body;
}

/** The message attributes (absent: none); anything but an object is left for the check to refuse. */
function attributes(body: Body): { [key: string]: Json } {
  return (body.attributes ?? {}) as { [key: string]: Json };
}

/** An instant with its time zone (RFC 3339 / ISO 8601 with Z or an offset): Postoffice's DateTime.from_iso8601. */
function parseInstant(text: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text)) return null;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? null : at;
}

function problem(field: string, message: string): Problem {
  return { in: "body", field, message };
}

/** Ecto's error body: every message of a field under its name. */
function fieldErrors(problems: Problem[]): { data: { errors: Record<string, string[]> } } {
  // No prototype: a field may be named by the client (`constructor`, `toString`), and must not find Object's.
  const errors: Record<string, string[]> = Object.create(null);
  for (const { field, message } of problems) {
    const name = field.split(".")[0]!;
    errors[name] = [...(errors[name] ?? []), message];
  }
  return { data: { errors } };
}

/** Every error on Postoffice's paths in its shape: a bad field as Ecto says it, anything else as its message. */
function postofficeError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof ValidationError && Array.isArray(error.details) && error.details.length > 0)
    return reply.code(400).send(fieldErrors(error.details as Problem[]));
  if (error instanceof ConflictError && error.code === "idempotency_conflict")
    return reply.code(409).send(fieldErrors([{ in: "header", field: "idempotency_key", message: TAKEN }]));
  const { status, body } = toHttpError(error);
  if (status >= 500) request.log.error({ err: error }, "request failed");
  return reply.code(status).send({ data: { errors: body.error.message } });
}
