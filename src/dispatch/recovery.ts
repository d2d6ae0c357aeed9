/**
 * Message recovery (Postoffice's rescuer, CONTRACTS §D.8): a producer that could not reach the dispatcher keeps its
 * messages, and every topic with recovery enabled has its origin host polled for them: `GET <origin_host>` lists
 * `[{id, topic, payload, attributes}]` (a bulk item is `{id, bulk: true, payload: [{topic, payload, attributes}]}`),
 * each item is ingested, then `DELETE <origin_host><id>/` removes it at the origin. An item is ingested under the
 * idempotency key `recovery:<host>:<id>[:<n>]`, so that an item whose DELETE failed (or whose node died between the
 * two) is not sent twice when it is listed again. A host that does not answer, or answers what is not such a list,
 * makes nothing. It runs as the task `dispatch.recover`, which a cron schedule enqueues every 30 s, once in the
 * cluster, while some topic has recovery enabled. Origin hosts go through the SSRF guard like webhook targets.
 */
import type { Json } from "../core/task.ts";
import type { HttpSender } from "./http-sender.ts";

const TIMEOUT_MS = 10_000;
const MAX_LIST_BYTES = 16 * 1024 * 1024;

export type RecoveredMessage = {
  topic: string;
  payload: { [key: string]: Json };
  attributes: { [key: string]: Json };
  idempotencyKey: string;
};

export type RecoveryDeps = {
  http: HttpSender;
  /** Ingests messages of one topic; false when the topic is unknown (the item is then left at the origin). */
  ingest: (message: RecoveredMessage) => Promise<boolean>;
  signal: AbortSignal;
};

export type RecoveryReport = { host: string; listed: number; ingested: number; deleted: number; error: string | null };

export async function recoverHost(host: string, deps: RecoveryDeps): Promise<RecoveryReport> {
  const report: RecoveryReport = { host, listed: 0, ingested: 0, deleted: 0, error: null };
  const listing = await deps.http.send({
    method: "GET",
    target: host,
    body: "",
    headers: { accept: "application/json" },
    timeoutMs: TIMEOUT_MS,
    signal: deps.signal,
    maxResponseBytes: MAX_LIST_BYTES,
  });
  if (listing.error !== null) return { ...report, error: listing.error };
  let items: unknown;
  try {
    items = JSON.parse(listing.responseBody ?? "");
  } catch {
    return { ...report, error: `${host} did not answer JSON` };
  }
  if (!Array.isArray(items)) return { ...report, error: `${host} did not answer a list` };
  report.listed = items.length;
  for (const item of items) {
    const messages = itemMessages(host, item);
    if (messages === null) continue;
    let ingested = true;
    for (const message of messages) ingested = (await deps.ingest(message)) && ingested;
    if (!ingested) continue;
    report.ingested++;
    const id = (item as { id: unknown }).id;
    const deleted = await deps.http.send({
      method: "DELETE",
      target: `${host}${String(id)}/`,
      body: "",
      headers: {},
      timeoutMs: TIMEOUT_MS,
      signal: deps.signal,
    });
    if (deleted.error === null) report.deleted++;
  }
  return report;
}

/** The messages of one listed item, or null when it is not one (left alone at the origin). */
function itemMessages(host: string, item: unknown): RecoveredMessage[] | null {
  if (!isObject(item) || (typeof item.id !== "number" && typeof item.id !== "string")) return null;
  const key = `recovery:${host}:${item.id}`;
  if (item.bulk === true) {
    if (!Array.isArray(item.payload)) return null;
    const messages = item.payload.map((part, n) => message(part, `${key}:${n}`));
    return messages.every((m) => m !== null) ? (messages as RecoveredMessage[]) : null;
  }
  const single = message(item, key);
  return single === null ? null : [single];
}

function message(item: unknown, idempotencyKey: string): RecoveredMessage | null {
  if (!isObject(item) || typeof item.topic !== "string" || !isObject(item.payload)) return null;
  const attributes = item.attributes === undefined || item.attributes === null ? {} : item.attributes;
  if (!isObject(attributes)) return null;
  return {
    topic: item.topic,
    payload: item.payload as { [key: string]: Json },
    attributes: attributes as { [key: string]: Json },
    idempotencyKey,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
