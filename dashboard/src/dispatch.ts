/**
 * Dispatch (docs/dispatch.md) as the dashboard reads it: its resources as the API shows them (snake_case), the calls,
 * and the cue that keeps a view fresh: the `dispatch` channel (every topic's events), followed from a snapshot's
 * position. Postoffice's endpoints (creating a topic or a publisher, sending, deleting) answer their errors in
 * Postoffice's shape (`{"data":{"errors":{field:[message]}}}`); they are turned into ApiErrors that say them.
 */
import { ApiError, request } from "./api.ts";
import { useLatch } from "./data.ts";
import { formatNumber } from "./format.ts";
import { type LiveEvent, useLive } from "./live.tsx";
import type { Position } from "./types.ts";

export type DeliveryState = "scheduled" | "pending" | "held" | "delivered" | "failed" | "discarded" | "cancelled";
export const DELIVERY_STATES: DeliveryState[] = [
  "failed",
  "scheduled",
  "pending",
  "held",
  "cancelled",
  "discarded",
  "delivered",
];
/** What a person can replay (docs/dispatch.md: failed or cancelled), retry now (scheduled), and cancel (not finished). */
export const REPLAYABLE: DeliveryState[] = ["failed", "cancelled"];
export const RETRYABLE_NOW: DeliveryState[] = ["scheduled"];
export const CANCELLABLE: DeliveryState[] = ["scheduled", "pending", "held"];

export type Topic = {
  id: number;
  name: string;
  origin_host: string;
  recovery_enabled: boolean;
  created_at: string;
  updated_at: string;
};

export type PublisherType = "http" | "amqp";
export type RetryMode = "schedule" | "fixed";

export type Publisher = {
  id: number;
  topic: string;
  topic_id: number;
  target: string;
  type: PublisherType;
  active: boolean;
  deleted: boolean;
  seconds_timeout: number;
  seconds_retry: number;
  retry_mode: RetryMode;
  max_attempts: number | null;
  chunk_size: number | null;
  concurrency: number | null;
  signing: { secrets: number; rotated_until: string | null };
  disabled_reason: string | null;
  failing_since: string | null;
  created_at: string;
  updated_at: string;
};

export type Message = {
  id: number;
  topic: string;
  payload: unknown;
  attributes: Record<string, unknown>;
  idempotency_key: string | null;
  received_at: string;
};

export type Attempt = {
  attempt: number;
  at: string;
  task_id: number | null;
  duration_ms: number;
  status: number | null;
  outcome: "delivered" | "retry" | "failed" | "gone";
  error: string | null;
  response_body: string | null;
  request: { target: string; headers: Record<string, string> };
  next_attempt_at: string | null;
};

export type Delivery = {
  id: number;
  message_id: number;
  publisher_id: number;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  received_at: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  publisher: { id: number; target: string; type: PublisherType; active: boolean; deleted: boolean };
  history: Attempt[];
};

/** A count as GET /api/dispatch/counts gives it: up to `limit` (10,000), and whether there are more. */
export type Count = { count: number; more: boolean };
export type StateCounts = Record<Exclude<DeliveryState, "delivered">, Count>;
export type DeliveryCounts = {
  limit: number;
  deliveries: StateCounts;
  publishers: { id: number; deliveries: StateCounts }[];
  position: Position;
};

/** "1,234", "10,000+" past the count's limit, "—" while unknown. */
export function countText(count: Count | undefined): string {
  if (count === undefined) return "—";
  return count.more ? `${formatNumber(count.count)}+` : formatNumber(count.count);
}

export type MessageFilter = {
  topic?: string | undefined;
  attribute?: string | undefined;
  q?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  state?: string | undefined;
};

export type PublisherInput = {
  topic?: string;
  type?: PublisherType;
  target: string;
  active: boolean;
  seconds_timeout: number;
  seconds_retry: number;
  retry_mode: RetryMode;
  max_attempts: number | null;
  concurrency: number | null;
  secret?: string | true;
};

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined && value !== "") search.set(name, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

/** Postoffice's error bodies, said as sentences: `name: has already been taken`. */
export function postofficeMessage(text: string): string | null {
  try {
    const errors = (JSON.parse(text) as { data?: { errors?: unknown } }).data?.errors;
    if (typeof errors === "string") return errors;
    if (errors !== null && typeof errors === "object")
      return Object.entries(errors as Record<string, string[]>)
        .map(([field, messages]) => `${field.replace(/_/g, " ")}: ${[messages].flat().join(", ")}`)
        .join("; ");
  } catch {
    // not JSON: the text as it is
  }
  return null;
}

async function postoffice<T>(method: string, path: string, body?: unknown): Promise<T> {
  try {
    return await request<T>(method, path, body);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const message = postofficeMessage(error.message);
    if (message === null) throw error;
    const code = error.status === 409 ? "taken" : error.status === 406 ? "not_acceptable" : "invalid";
    throw new ApiError(error.status, code, message);
  }
}

const id = (n: number) => String(n);

export const dispatchApi = {
  topics: () => request<{ topics: Topic[]; position: Position }>("GET", "topics"),
  createTopic: (input: { name: string; origin_host: string; recovery_enabled: boolean }) =>
    postoffice<{ data: { id: number; name: string } }>("POST", "topics", input),
  updateTopic: (name: string, input: { origin_host?: string; recovery_enabled?: boolean }) =>
    request<{ topic: Topic }>("PATCH", `topics/${encodeURIComponent(name)}`, input),
  publishers: (topic?: string) =>
    request<{ publishers: Publisher[]; position: Position }>("GET", `publishers${query({ topic })}`),
  createPublisher: (input: PublisherInput) =>
    postoffice<{ data: { secret?: string } }>("POST", "publishers", { ...input, topic: input.topic }),
  updatePublisher: (publisher: number, input: Partial<PublisherInput>) =>
    request<{ publisher: Publisher }>("PATCH", `publishers/${id(publisher)}`, input),
  deletePublisher: (publisher: number) => postoffice<void>("DELETE", `publishers/${id(publisher)}`),
  secret: (publisher: number) => request<{ secret: string | null }>("GET", `publishers/${id(publisher)}/secret`),
  rotateSecret: (publisher: number) =>
    request<{ publisher: Publisher; secret: string }>("POST", `publishers/${id(publisher)}/rotate-secret`, {}),
  replayWindow: (publisher: number, since: string, until?: string) =>
    request<{ replayed: number }>("POST", `publishers/${id(publisher)}/replay`, {
      since,
      ...(until === undefined ? {} : { until }),
    }),
  messages: (filter: MessageFilter, cursor: string | undefined, limit: number, signal?: AbortSignal) =>
    request<{ messages: Message[]; next_cursor: string | null; position: Position }>(
      "GET",
      `messages${query({ ...filter, cursor, limit })}`,
      undefined,
      signal,
    ),
  message: (message: number) =>
    request<{ message: Message; deliveries: Delivery[]; position: Position }>("GET", `messages/${id(message)}`),
  send: (topic: string, payload: unknown, attributes: Record<string, unknown>) =>
    postoffice<{ id: number[] }>("POST", "messages", { topic, payload, attributes }),
  deliveries: (state: string, publisher: number | undefined, cursor: string | undefined, limit: number) =>
    request<{ deliveries: Delivery[]; next_cursor: string | null; position: Position }>(
      "GET",
      `deliveries${query({ state, publisher, cursor, limit })}`,
    ),
  delivery: (delivery: number) => request<{ delivery: Delivery }>("GET", `deliveries/${id(delivery)}`),
  replay: (delivery: number) => request<{ delivery: Delivery }>("POST", `deliveries/${id(delivery)}/replay`),
  retryNow: (delivery: number) => request<{ delivery: Delivery }>("POST", `deliveries/${id(delivery)}/retry`),
  cancel: (delivery: number) => request<{ delivery: Delivery }>("POST", `deliveries/${id(delivery)}/cancel`),
  counts: (publishers: boolean) =>
    request<DeliveryCounts>("GET", `dispatch/counts${publishers ? "?publishers=true" : ""}`),
};

export const dispatchKeys = {
  all: ["dispatch"] as const,
  topics: ["dispatch", "topics"] as const,
  publishers: (topic?: string) => ["dispatch", "publishers", topic ?? ""] as const,
  counts: (publishers: boolean) => ["dispatch", "counts", publishers] as const,
  messages: (filter: MessageFilter) => ["dispatch", "messages", filter] as const,
  message: (message: number) => ["dispatch", "message", message] as const,
  deliveries: (state: string, publisher?: number) => ["dispatch", "deliveries", state, publisher ?? 0] as const,
};

/**
 * Follows the `dispatch` channel (every topic's events) from `position` (a snapshot's; null: not yet), calling `cue`
 * with each batch; a gap the server cannot replay calls it with none (re-read everything).
 */
export function useDispatchCue(position: Position | null | undefined, cue: (events: LiveEvent[]) => void): void {
  const since = useLatch(position ?? null);
  useLive(since === null ? null : ["dispatch"], { since, onEvents: cue, onReload: () => cue([]) });
}

export type DispatchEventData = {
  topic?: string;
  delivery?: number;
  deliveries?: number[] | number;
  message?: number;
  messages?: number[];
  publisher?: number | null;
  outcome?: string;
  state?: DeliveryState;
};

/** "2xx" and friends, for a status badge's tone. */
export function statusTone(status: number | null): "ok" | "bad" | "warn" | "neutral" {
  if (status === null) return "bad";
  if (status >= 200 && status < 300) return "ok";
  if (status === 429 || status === 410) return "warn";
  return "bad";
}

/** An <input type="datetime-local"> value as an ISO instant (the viewer's time zone), or undefined. */
export function localToIso(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** An ISO instant as an <input type="datetime-local"> value in the viewer's time zone. */
export function isoToLocal(iso: string | undefined): string {
  if (iso === undefined || iso === "") return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
