/**
 * Page cursors of dispatch's lists, as opaque text: a message search's is the (receivedAt, id) of the last message
 * of the page, a deliveries list's the (receivedAt, messageId, publisherId) of its last delivery.
 */
import { ValidationError } from "../core/errors.ts";
import type { DeliveryCursor, MessageCursor } from "../store/dispatch-store.ts";

export function messageCursor(cursor: MessageCursor): string {
  return `${cursor.receivedAt.getTime()}_${cursor.id}`;
}

export function deliveryCursor(cursor: DeliveryCursor): string {
  return `${cursor.receivedAt.getTime()}_${cursor.messageId}_${cursor.publisherId}`;
}

export function parseMessageCursor(text: string): MessageCursor {
  const [at, id] = numbers(text, 2);
  return { receivedAt: new Date(at!), id: id! };
}

export function parseDeliveryCursor(text: string): DeliveryCursor {
  const [at, messageId, publisherId] = numbers(text, 3);
  return { receivedAt: new Date(at!), messageId: messageId!, publisherId: publisherId! };
}

function numbers(text: string, count: number): number[] {
  const parts = text.split("_");
  const values = parts.map(Number);
  if (parts.length !== count || !parts.every((p) => /^\d{1,16}$/.test(p)) || !values.every(Number.isSafeInteger))
    throw new ValidationError("the cursor is not one this API gave", [
      { in: "querystring", field: "cursor", message: "is invalid" },
    ]);
  return values;
}
