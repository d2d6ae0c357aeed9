/**
 * The todo domain, no I/O: items, the three events, and the seed's rules for them (contract A.2, A.3), checked
 * before anything is written. The seed's Ecto changeset cast `title` and `done` and required a non-blank title; its
 * update and delete raised on a malformed or unknown id, which crashed the channel. Here every bad action is a
 * Refusal with a reason, and the caller answers it.
 */
import { randomUUID } from "node:crypto";

export type Item = { id: string; title: string; done: boolean };

export const EVENT_TYPES = ["insert", "update", "delete"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What the engine broadcasts: the full item for insert and update, the id for delete (contract A.2). */
export type TodoEvent =
  | { type: "insert"; data: Item }
  | { type: "update"; data: Item }
  | { type: "delete"; data: { id: string } };

/** An action asked for by a client or a worker, checked: what it may change, not yet applied. */
export type Action =
  | { type: "insert"; data: { title: string; done?: boolean } }
  | { type: "update"; data: { id: string; title?: string; done?: boolean } }
  | { type: "delete"; data: { id: string } };

export type RefusalReason =
  | "unknown_event"
  | "missing_data"
  | "invalid_data"
  | "blank_title"
  | "invalid_title"
  | "title_too_long"
  | "invalid_done"
  | "missing_id"
  | "invalid_id"
  | "not_found"
  | "engine_unavailable"
  | "internal_error";

export type Refusal = { reason: RefusalReason; message: string };

/** The seed's column was `varchar(255)` (Ecto's `:string`): a longer title made the insert raise. */
export const MAX_TITLE_LENGTH = 255;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === "object" && value !== null && "reason" in value && "message" in value;
}

export function refusal(reason: RefusalReason, message: string): Refusal {
  return { reason, message };
}

export function newId(): string {
  return randomUUID();
}

/** A UUID in any case, as Ecto.UUID casts it (lower-cased); null when malformed. */
export function parseId(value: unknown): string | null {
  return typeof value === "string" && UUID.test(value) ? value.toLowerCase() : null;
}

/**
 * Checks a push (`event` and its payload's `data`) or a dispatched Event: only the keys the seed cast are read
 * (`title`, `done`, and `id` for update and delete); others, like an `id` given to insert, are ignored as cast did.
 */
export function parseAction(type: unknown, data: unknown): Action | Refusal {
  if (typeof type !== "string" || !(EVENT_TYPES as readonly string[]).includes(type)) {
    return refusal("unknown_event", `unknown event ${JSON.stringify(type)}: expected insert, update or delete`);
  }
  if (data === undefined) return refusal("missing_data", 'the payload has no "data"');
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return refusal("invalid_data", '"data" must be an object');
  }
  const fields = data as Record<string, unknown>;
  if (type === "insert") {
    if (!("title" in fields)) return refusal("blank_title", "title can't be blank");
    const title = checkTitle(fields.title);
    if (isRefusal(title)) return title;
    const done = checkDone(fields.done);
    if (isRefusal(done)) return done;
    return { type, data: done === undefined ? { title } : { title, done } };
  }
  if (!("id" in fields) || fields.id === null) return refusal("missing_id", `${type} needs the item's "id"`);
  const id = parseId(fields.id);
  if (id === null) return refusal("invalid_id", `"id" must be a UUID, got ${JSON.stringify(fields.id).slice(0, 80)}`);
  if (type === "delete") return { type: "delete", data: { id } };
  const changes: { id: string; title?: string; done?: boolean } = { id };
  if ("title" in fields) {
    const title = checkTitle(fields.title);
    if (isRefusal(title)) return title;
    changes.title = title;
  }
  const done = checkDone(fields.done);
  if (isRefusal(done)) return done;
  if (done !== undefined) changes.done = done;
  return { type: "update", data: changes };
}

function checkTitle(value: unknown): string | Refusal {
  // Ecto cast "" to nil, and validate_required counts whitespace-only as blank; null is blank too.
  if (value === null || value === undefined || (typeof value === "string" && value.trim() === "")) {
    return refusal("blank_title", "title can't be blank");
  }
  if (typeof value !== "string") return refusal("invalid_title", "title must be a string");
  if (value.includes("\u0000")) return refusal("invalid_title", "title must not contain NUL characters");
  if ([...value].length > MAX_TITLE_LENGTH) {
    return refusal("title_too_long", `title must be at most ${MAX_TITLE_LENGTH} characters`);
  }
  return value;
}

function checkDone(value: unknown): boolean | undefined | Refusal {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") return refusal("invalid_done", "done must be true or false");
  return value;
}

/** The event an action makes, given the item it changes (null when unknown); a Refusal for an unknown update. */
export function eventFor(action: Action, current: Item | null, id: () => string = newId): TodoEvent | Refusal {
  switch (action.type) {
    case "insert":
      return { type: "insert", data: { id: id(), title: action.data.title, done: action.data.done ?? false } };
    case "update": {
      if (current === null) return refusal("not_found", `no item has id ${action.data.id}`);
      const { title = current.title, done = current.done } = action.data;
      return { type: "update", data: { id: current.id, title, done } };
    }
    case "delete":
      // As the seed: a delete of an unknown (well-formed) id succeeds and is broadcast.
      return { type: "delete", data: { id: action.data.id } };
  }
}

/** Items in the seed's JSON form, keys in its order: {id, title, done}. */
export function itemJson(item: Item): Item {
  return { id: item.id, title: item.title, done: item.done };
}

/** The event in the seed's JSON form, with no other key: {type, data}. */
export function eventJson(event: TodoEvent): TodoEvent {
  return event.type === "delete"
    ? { type: "delete", data: { id: event.data.id } }
    : { type: event.type, data: itemJson(event.data) };
}

/** A broadcast or replayed event read back (from the log, the fanout, an RPC answer); null when it is not one. */
export function parseEvent(value: unknown): TodoEvent | null {
  if (typeof value !== "object" || value === null) return null;
  const { type, data } = value as { type?: unknown; data?: unknown };
  if (typeof data !== "object" || data === null) return null;
  const fields = data as Record<string, unknown>;
  const id = typeof fields.id === "string" ? fields.id : null;
  if (id === null) return null;
  if (type === "delete") return { type: "delete", data: { id } };
  if ((type === "insert" || type === "update") && typeof fields.title === "string" && typeof fields.done === "boolean")
    return { type, data: { id, title: fields.title, done: fields.done } };
  return null;
}

/** Applies an event to a list in creation order, as the seed's React client did (insert appends, update merges). */
export function applyEvent(items: Map<string, Item>, event: TodoEvent): void {
  if (event.type === "delete") items.delete(event.data.id);
  else if (event.type === "insert") items.set(event.data.id, itemJson(event.data));
  else if (items.has(event.data.id)) items.set(event.data.id, itemJson(event.data));
}
