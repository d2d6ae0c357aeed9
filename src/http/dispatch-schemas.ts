/**
 * JSON Schemas of Conveyor's own dispatch endpoints (routes/dispatch.ts): path ids, list queries and change bodies,
 * checked by Fastify's Ajv as every other Conveyor endpoint is (docs/errors.md: validation_failed). Postoffice's
 * endpoints (routes/postoffice.ts) check their bodies themselves, to answer in the seed's shape.
 */
import { COUNTED_STATES, DELIVERY_STATES } from "../store/dispatch-store.ts";

const id = (description: string) => ({ type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description });
const limit = { type: "integer", minimum: 1, maximum: 500, description: "Page size (default 50)." } as const;
const cursor = { type: "string", maxLength: 64, description: "The next_cursor of the page before." } as const;
const instant = { type: "string", format: "date-time" } as const;

export const idParams = {
  type: "object",
  required: ["id"],
  additionalProperties: false,
  properties: { id: id("Id.") },
} as const;

/** A topic by id, or by name when it is not all digits. */
export const topicParams = {
  type: "object",
  required: ["topic"],
  additionalProperties: false,
  properties: { topic: { type: "string", minLength: 1, maxLength: 255, description: "Topic id or name." } },
} as const;

export const topicPatch = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: { origin_host: { type: "string", minLength: 1, maxLength: 2048 }, recovery_enabled: { type: "boolean" } },
} as const;

export const publishersQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    topic: { type: "string", minLength: 1, maxLength: 255, description: "Only this topic's (name)." },
    deleted: { type: "string", enum: ["true", "false"], description: "Deleted ones too." },
  },
} as const;

export const publisherPatch = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    target: { type: "string", minLength: 1, maxLength: 2048 },
    active: { type: "boolean" },
    seconds_timeout: { type: "integer", minimum: 1, maximum: 3600 },
    seconds_retry: { type: "integer", minimum: 1, maximum: 604_800 },
    retry_mode: { type: "string", enum: ["schedule", "fixed"] },
    max_attempts: { type: ["integer", "null"], minimum: 1, maximum: 1000 },
    chunk_size: { type: ["integer", "null"], minimum: 1, maximum: 10_000 },
    concurrency: { type: ["integer", "null"], minimum: 1, maximum: 1000 },
  },
} as const;

export const rotateBody = {
  type: ["object", "null"],
  additionalProperties: false,
  properties: { secret: { type: "string", description: "whsec_ and the base64 of 24 to 64 bytes; made when absent." } },
} as const;

export const replayBody = {
  type: "object",
  required: ["since"],
  additionalProperties: false,
  properties: {
    since: { ...instant, description: "Deliveries of messages received at or after this instant." },
    until: { ...instant, description: "…and before this one (default now)." },
  },
} as const;

export const messagesQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    topic: { type: "string", minLength: 1, maxLength: 255 },
    attribute: { type: "string", pattern: "^[^=]+=", maxLength: 1024, description: "key=value" },
    q: { type: "string", minLength: 1, maxLength: 1024, description: "Words the payload holds (all of them)." },
    from: { ...instant, description: "Received at or after." },
    to: { ...instant, description: "Received before." },
    state: { type: "string", enum: DELIVERY_STATES, description: "With a delivery in this state." },
    cursor,
    limit,
  },
} as const;

export const deliveriesQuery = {
  type: "object",
  required: ["state"],
  additionalProperties: false,
  properties: {
    state: { type: "string", enum: DELIVERY_STATES.filter((s) => s !== "delivered") },
    publisher: id("Only this publisher's."),
    cursor,
    limit,
  },
} as const;

export const countsQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    publishers: { type: "string", enum: ["true", "false"], description: "Each undeleted publisher's counts too." },
  },
} as const;

const count = {
  type: "object",
  required: ["count", "more"],
  additionalProperties: false,
  properties: {
    count: { type: "integer", minimum: 0, description: "Deliveries in the state, up to `limit`." },
    more: { type: "boolean", description: "There are more than `limit`: say the count as `10,000+`." },
  },
} as const;

const stateCounts = {
  type: "object",
  required: COUNTED_STATES,
  additionalProperties: false,
  properties: Object.fromEntries(COUNTED_STATES.map((state) => [state, count])),
} as const;

/** GET /api/dispatch/counts's answer. */
export const countsReply = {
  type: "object",
  required: ["limit", "deliveries", "publishers", "position"],
  additionalProperties: false,
  properties: {
    limit: { type: "integer", description: "Where counting stops (10,000)." },
    deliveries: { ...stateCounts, description: "Deliveries per state, every state but delivered." },
    publishers: {
      type: "array",
      description: "Per undeleted publisher, with `?publishers=true` (else empty).",
      items: {
        type: "object",
        required: ["id", "deliveries"],
        additionalProperties: false,
        properties: { id: { type: "integer" }, deliveries: stateCounts },
      },
    },
    position: { $ref: "Position#" },
  },
} as const;
