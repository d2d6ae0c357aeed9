/**
 * Checking what is asked of dispatch: topics, publishers and messages, from the library (camelCase) or from HTTP
 * bodies (Postoffice's snake_case names; each field is read under either name). A bad input throws one
 * ValidationError listing every problem as `{ in: "body", field, message }`, with Postoffice's (Ecto's) words —
 * "can't be blank", "is invalid" — and its snake_case field names, so that the Postoffice routes can answer with
 * the seed's `{"data":{"errors":{field:[message]}}}` from the same check. Unknown fields are ignored, as Phoenix did.
 *
 * Where Postoffice accepted what could never work, this refuses it: an http target that is not an http(s) URL, a
 * timeout of 0.
 */
import { ValidationError } from "../core/errors.ts";
import type { Json } from "../core/task.ts";
import { isJson, storableText } from "../core/task-input.ts";
import type { PublisherType, RetryMode, TopicInput } from "../store/dispatch-store.ts";
import { isValidSecret } from "./signing.ts";

export const BLANK = "can't be blank";
export const INVALID = "is invalid";
export const TAKEN = "has already been taken";

const MAX_NAME = 255;
const MAX_SECONDS = 3600;
const MAX_ATTEMPTS = 1000;

export type Problem = { in: string; field: string; message: string };

type Body = Record<string, unknown>;

/** Collects problems; `done()` throws them all at once. */
export class Checker {
  readonly problems: Problem[] = [];
  readonly #body: Body;

  constructor(body: unknown) {
    this.#body = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Body) : {};
  }

  /** The value of `field` (snake_case), or of its camelCase name. */
  value(field: string): unknown {
    if (field in this.#body) return this.#body[field];
    const camel = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return this.#body[camel];
  }

  fail(field: string, message: string): undefined {
    this.problems.push({ in: "body", field, message });
    return undefined;
  }

  requiredText(field: string, max = MAX_NAME): string {
    const value = this.value(field);
    if (value === undefined || value === null || (typeof value === "string" && value.trim() === ""))
      return this.fail(field, BLANK) ?? "";
    // Text no store keeps as given (a NUL, a lone surrogate: PostgreSQL refuses them) is refused here, not by the store.
    if (typeof value !== "string" || value.length > max || !storableText(value)) return this.fail(field, INVALID) ?? "";
    return value;
  }

  /** A boolean (Ecto's cast also takes "true" and "false"). */
  boolean(field: string, fallback: boolean): boolean {
    const value = this.value(field);
    if (value === undefined || value === null) return fallback;
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "false") return value === "true";
    return this.fail(field, INVALID) ?? fallback;
  }

  /** An integer in [min, max] (or its decimal text, as Ecto casts it); null when absent and `fallback` is null. */
  integer<F extends number | null>(field: string, fallback: F, min: number, max: number): number | F {
    const value = this.value(field);
    if (value === undefined || value === null) return fallback;
    const number = typeof value === "string" && /^-?\d{1,10}$/.test(value) ? Number(value) : value;
    if (typeof number !== "number" || !Number.isInteger(number) || number < min || number > max)
      return this.fail(field, INVALID) ?? fallback;
    return number;
  }

  /** A JSON object; `{}` when absent and not required. */
  object(field: string, required: boolean): { [key: string]: Json } {
    const value = this.value(field);
    if (value === undefined || value === null) return required ? (this.fail(field, BLANK) ?? {}) : {};
    if (typeof value !== "object" || Array.isArray(value) || !isJson(value)) return this.fail(field, INVALID) ?? {};
    return value as { [key: string]: Json };
  }

  done(what: string): void {
    if (this.problems.length === 0) return;
    const list = this.problems.map((p) => `${p.field} ${p.message}`).join("; ");
    throw new ValidationError(`${what}: ${list}`, this.problems);
  }
}

export function checkTopic(body: unknown): TopicInput {
  const c = new Checker(body);
  const topic = {
    name: c.requiredText("name"),
    originHost: c.requiredText("origin_host", 2048),
    recoveryEnabled: c.boolean("recovery_enabled", false),
  };
  c.done("bad topic");
  return topic;
}

export type PublisherSpec = {
  topic: string;
  target: string;
  type: PublisherType;
  active: boolean;
  secondsTimeout: number;
  secondsRetry: number;
  retryMode: RetryMode;
  maxAttempts: number | null;
  chunkSize: number | null;
  concurrency: number | null;
  /** A secret to sign with, or true to have one made. */
  secret: string | true | null;
};

/** `type`: http, amqp, or Postoffice's pubsub (sent to AMQP, the broker here). */
export function publisherType(value: unknown): PublisherType | null {
  return value === "http" ? "http" : value === "amqp" || value === "pubsub" ? "amqp" : null;
}

export function checkPublisher(body: unknown): PublisherSpec {
  const c = new Checker(body);
  const topic = c.requiredText("topic");
  const rawType = c.value("type");
  const type = publisherType(rawType);
  if (type === null) c.fail("type", rawType === undefined || rawType === null || rawType === "" ? BLANK : INVALID);
  const target = checkTarget(c, type);
  const spec: PublisherSpec = {
    topic,
    target,
    type: type ?? "http",
    active: c.boolean("active", false),
    secondsTimeout: c.integer("seconds_timeout", 5, 1, MAX_SECONDS),
    secondsRetry: c.integer("seconds_retry", 30, 1, 7 * 24 * 3600),
    retryMode: retryMode(c, "schedule"),
    maxAttempts: c.integer("max_attempts", null, 1, MAX_ATTEMPTS),
    chunkSize: c.integer("chunk_size", null, 1, 10_000),
    concurrency: c.integer("concurrency", null, 1, MAX_ATTEMPTS),
    secret: secret(c),
  };
  c.done("bad publisher");
  return spec;
}

export type PublisherPatch = Partial<Omit<PublisherSpec, "topic" | "type" | "secret">>;

/** Changes to a publisher: only the fields given (its topic and type stay, as Postoffice's edit page kept them). */
export function checkPublisherPatch(body: unknown, type: PublisherType): PublisherPatch {
  const c = new Checker(body);
  const patch: PublisherPatch = {};
  if (c.value("target") !== undefined) patch.target = checkTarget(c, type);
  if (c.value("active") !== undefined) patch.active = c.boolean("active", false);
  if (c.value("seconds_timeout") !== undefined) patch.secondsTimeout = c.integer("seconds_timeout", 5, 1, MAX_SECONDS);
  if (c.value("seconds_retry") !== undefined) patch.secondsRetry = c.integer("seconds_retry", 30, 1, 7 * 24 * 3600);
  if (c.value("retry_mode") !== undefined) patch.retryMode = retryMode(c, "schedule");
  for (const [field, key, max] of [
    ["max_attempts", "maxAttempts", MAX_ATTEMPTS],
    ["chunk_size", "chunkSize", 10_000],
    ["concurrency", "concurrency", MAX_ATTEMPTS],
  ] as const)
    if (c.value(field) !== undefined) patch[key] = c.integer(field, null, 1, max);
  for (const field of ["topic", "type"]) if (c.value(field) !== undefined) c.fail(field, "cannot be changed");
  c.done("bad publisher change");
  return patch;
}

function checkTarget(c: Checker, type: PublisherType | null): string {
  const target = c.requiredText("target", 2048);
  if (target === "" || type !== "http") return target;
  try {
    const url = new URL(target);
    if (url.protocol === "http:" || url.protocol === "https:") return target;
  } catch {}
  return c.fail("target", INVALID) ?? target;
}

function retryMode(c: Checker, fallback: RetryMode): RetryMode {
  const value = c.value("retry_mode");
  if (value === undefined || value === null) return fallback;
  return value === "schedule" || value === "fixed" ? value : (c.fail("retry_mode", INVALID) ?? fallback);
}

function secret(c: Checker): string | true | null {
  const value = c.value("secret");
  if (value === undefined || value === null || value === false) return null;
  if (value === true || isValidSecret(value)) return value;
  return c.fail("secret", INVALID) ?? null;
}

export type MessageSpec = { payload: { [key: string]: Json }; attributes: { [key: string]: Json } };

/** A message's payload (a JSON object) and attributes (a JSON object, `{}` when absent). */
export function checkMessage(body: unknown): MessageSpec {
  const c = new Checker(body);
  const spec = { payload: c.object("payload", true), attributes: c.object("attributes", false) };
  c.done("bad message");
  return spec;
}

/** Words to search payloads for: the letters-and-digits runs of `text`, lower-cased (as both indexes split them). */
export function searchWords(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word !== "");
}
