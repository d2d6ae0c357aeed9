/**
 * The frames of the live WebSocket protocol (docs/live-protocol.md): parsing what a client sends, with a clear
 * refusal for anything else, and the shapes the server sends. Parsing only checks shapes; whether a channel may
 * be followed is the access check's (access.ts).
 */
import type { Json, LogEvent } from "../core/task.ts";
import { isJson } from "../core/task-input.ts";

export type Position = { epoch: string; offset: number };

export type ClientFrame =
  | { type: "auth"; token: string }
  | { type: "subscribe"; id: string; channels: string[]; since: Position | null; token: string | null }
  | { type: "unsubscribe"; id: string }
  | { type: "publish"; ref: Json; channel: string; data: Json; token: string | null }
  | { type: "ping"; ref: Json };

export type ErrorCode =
  | "invalid_frame"
  | "invalid_channel"
  | "unauthorized"
  | "forbidden"
  | "token_malformed"
  | "token_signature"
  | "token_expired"
  | "duplicate_subscription"
  | "unknown_subscription"
  | "too_many_subscriptions"
  | "too_many_channels"
  | "publish_failed";

export type Refusal = { code: ErrorCode; message: string; id?: string; ref?: Json };

export const MAX_CHANNELS_PER_SUBSCRIPTION = 50;
const SUBSCRIPTION_ID = /^[A-Za-z0-9_\-.:]{1,64}$/;

/** A client's frame, or the refusal to answer it with. */
export function parseClientFrame(text: string): ClientFrame | Refusal {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid("the frame is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return invalid("a frame is a JSON object");
  const frame = value as Record<string, unknown>;
  const ref = frame.ref === undefined || isJson(frame.ref) ? ((frame.ref ?? null) as Json) : null;
  switch (frame.type) {
    case "auth":
      return typeof frame.token === "string" ? { type: "auth", token: frame.token } : invalid("auth needs a token", {});
    case "subscribe":
      return parseSubscribe(frame);
    case "unsubscribe":
      return typeof frame.id === "string" && SUBSCRIPTION_ID.test(frame.id)
        ? { type: "unsubscribe", id: frame.id }
        : invalid("unsubscribe needs the id of a subscription");
    case "publish": {
      if (typeof frame.channel !== "string") return invalid("publish needs a channel", { ref });
      if (frame.data === undefined || !isJson(frame.data)) return invalid("publish needs JSON data", { ref });
      const token = optionalToken(frame.token);
      if (token === undefined) return invalid("token must be a string", { ref });
      return { type: "publish", ref, channel: frame.channel, data: frame.data, token };
    }
    case "ping":
      return { type: "ping", ref };
    default:
      return invalid(`unknown frame type ${JSON.stringify(String(frame.type)).slice(0, 80)}`, { ref });
  }
}

function parseSubscribe(frame: Record<string, unknown>): ClientFrame | Refusal {
  const { id } = frame;
  if (typeof id !== "string" || !SUBSCRIPTION_ID.test(id)) {
    return invalid("subscribe needs an id of 1 to 64 letters, digits and _ - . :");
  }
  const { channels } = frame;
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === "string")) {
    return invalid("channels must be a non-empty list of names", { id });
  }
  if (channels.length > MAX_CHANNELS_PER_SUBSCRIPTION) {
    return { code: "too_many_channels", message: `at most ${MAX_CHANNELS_PER_SUBSCRIPTION} channels`, id };
  }
  const since = frame.since === undefined || frame.since === null ? null : parsePosition(frame.since);
  if (since === undefined) return invalid("since must be { epoch: string, offset: integer >= 0 }", { id });
  const token = optionalToken(frame.token);
  if (token === undefined) return invalid("token must be a string", { id });
  return { type: "subscribe", id, channels: [...new Set(channels as string[])], since, token };
}

/** `{ epoch, offset }` as sent in a frame; undefined when malformed. */
export function parsePosition(value: unknown): Position | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { epoch, offset } = value as Record<string, unknown>;
  if (typeof epoch !== "string" || epoch.length === 0 || epoch.length > 64) return undefined;
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) return undefined;
  return { epoch, offset: offset as number };
}

/** `<epoch>:<offset>`, as SSE ids and the `since` query carry it; undefined when malformed. */
export function parsePositionText(text: string): Position | undefined {
  const match = /^([A-Za-z0-9_-]{1,64}):(\d{1,16})$/.exec(text);
  if (match === null) return undefined;
  return parsePosition({ epoch: match[1], offset: Number(match[2]) });
}

function optionalToken(token: unknown): string | null | undefined {
  if (token === undefined || token === null) return null;
  return typeof token === "string" ? token : undefined;
}

function invalid(message: string, about: { id?: unknown; ref?: Json } = {}): Refusal {
  const refusal: Refusal = { code: "invalid_frame", message };
  if (typeof about.id === "string" && SUBSCRIPTION_ID.test(about.id)) refusal.id = about.id;
  if (about.ref !== undefined && about.ref !== null) refusal.ref = about.ref;
  return refusal;
}

export function isRefusal(value: ClientFrame | Refusal): value is Refusal {
  return "code" in value;
}

/** The wire form of an event for subscription `sub`. */
export function eventFrame(sub: string, event: LogEvent): Record<string, Json> {
  const frame: Record<string, Json> = { type: "event", sub, offset: event.offset, name: event.type };
  if (event.channel === null) {
    frame.taskId = event.taskId;
    frame.queue = event.queue;
  } else {
    frame.channel = event.channel;
  }
  frame.data = event.data;
  frame.at = event.at.toISOString();
  return frame;
}
