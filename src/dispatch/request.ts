/**
 * What one attempt of a delivery sends, built from the delivery's message and publisher:
 *
 * - the body: the payload with the message's attributes merged in under "attributes" (Postoffice's format since
 *   its #153), as JSON with the sender's key order;
 * - over HTTP: `content-type: application/json` and `message-id: <delivery id>` (Postoffice's headers: its id was
 *   the job's, one per message and publisher, as ours is), a user agent, and with signing secrets the Standard
 *   Webhooks headers, whose `webhook-id` (`dlv_<delivery id>`) stays the same across retries and replays;
 * - over AMQP: the same body, the attributes as message headers, the delivery's id as the message id.
 */
import type { Json } from "../core/task.ts";
import type { DeliveryWork } from "../store/dispatch-store.ts";
import { signatureHeaders } from "./signing.ts";

export const USER_AGENT = "Conveyor-Dispatch/0.1 (+https://www.standardwebhooks.com)";

export function deliveryBody(payload: Json, attributes: { [key: string]: Json }): string {
  const merged =
    payload !== null && typeof payload === "object" && !Array.isArray(payload)
      ? { ...payload, attributes }
      : { payload, attributes };
  return JSON.stringify(merged);
}

/** The id a receiver can deduplicate by: one per delivery, the same on every attempt. */
export function webhookId(deliveryId: number): string {
  return `dlv_${deliveryId}`;
}

export function httpHeaders(work: DeliveryWork, body: string, now: Date): Record<string, string> {
  return {
    "content-type": "application/json",
    "message-id": String(work.delivery.id),
    "user-agent": USER_AGENT,
    ...signatureHeaders(work.publisher.secrets, webhookId(work.delivery.id), now, body),
  };
}
