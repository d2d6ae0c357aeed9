/**
 * Dispatch's deliveries as people steer them: one with its attempts, the failing ones page by page, a replay of one
 * (sent again from the start of its schedule), a cancel, and the replay of a publisher's failures over a window of time
 * (Svix's recover: in batches, at most MAX_REPLAY). A replayed delivery becomes due at once and the retry timer gives
 * it a task. "Retry now" brings a retrying delivery's next attempt forward, the same way; and the counts per state
 * are read capped (COUNT_LIMIT), so that they cost the same on a table of any size.
 */
import { ConflictError, NotFoundError, ValidationError } from "../core/errors.ts";
import type { CountedState, DeliveryState } from "../store/dispatch-store.ts";
import { deliveryCursor, parseDeliveryCursor } from "./cursors.ts";
import { type DeliveryView, view } from "./messages.ts";
import type { DispatchParts } from "./parts.ts";

export const MAX_REPLAY = 10_000;
/** Counts stop here: past it, a count says "at least this many" (`more`). */
export const COUNT_LIMIT = 10_000;
const REPLAY_BATCH = 500;

export type DeliveryDetail = DeliveryView;

export type DeliveryQuery = {
  state: Exclude<DeliveryState, "delivered">;
  publisher?: number;
  cursor?: string;
  limit?: number;
};

export type DeliveryPage = { deliveries: DeliveryView[]; nextCursor: string | null };

export async function detail(parts: DispatchParts, id: number): Promise<DeliveryDetail> {
  await parts.ready();
  const delivery = await parts.conveyor.store.dispatch.deliveryGet({ id });
  if (delivery === null) throw new NotFoundError("delivery_not_found", `no delivery ${id}`);
  return view(parts, delivery);
}

export async function list(parts: DispatchParts, query: DeliveryQuery): Promise<DeliveryPage> {
  await parts.ready();
  const limit = query.limit ?? 50;
  const deliveries = await parts.conveyor.store.dispatch.deliveryList({
    state: query.state,
    publisherId: query.publisher,
    before: query.cursor === undefined ? undefined : parseDeliveryCursor(query.cursor),
    limit,
  });
  const views = await Promise.all(deliveries.map((delivery) => view(parts, delivery)));
  const last = deliveries.at(-1);
  return {
    deliveries: views,
    nextCursor: deliveries.length === limit && last !== undefined ? deliveryCursor(last) : null,
  };
}

export async function replayOne(parts: DispatchParts, id: number): Promise<DeliveryDetail> {
  const current = await detail(parts, id);
  if (current.state !== "failed" && current.state !== "cancelled")
    throw new ConflictError(
      "invalid_state",
      `delivery ${id} is ${current.state}; only failed or cancelled ones are replayed`,
    );
  if (current.publisher.deleted) throw new ConflictError("invalid_state", `delivery ${id}'s publisher is deleted`);
  const now = parts.clock.now();
  await parts.conveyor.store.dispatch.deliveryReplay({ ids: [id], limit: 1, now });
  made(parts, now);
  return detail(parts, id);
}

/**
 * Sends a retrying (scheduled) delivery now rather than at its next attempt: due at once, for the retry timer to give
 * it a task. Its attempts and its place in the retry schedule stay; a failure goes on from there.
 */
export async function retryNow(parts: DispatchParts, id: number): Promise<DeliveryDetail> {
  const current = await detail(parts, id);
  if (current.state !== "scheduled")
    throw new ConflictError(
      "invalid_state",
      `delivery ${id} is ${current.state}; only one waiting for its next attempt (scheduled) is retried now`,
    );
  if (!current.publisher.active)
    throw new ConflictError("invalid_state", `delivery ${id}'s publisher is disabled: enable it to send`);
  const now = parts.clock.now();
  // Null: it left scheduled meanwhile (the timer gave it a task): it is on its way all the same.
  if ((await parts.conveyor.store.dispatch.deliveryRetryNow({ id, now })) !== null) made(parts, now);
  return detail(parts, id);
}

export type Count = { count: number; more: boolean };
export type StateCountView = Record<CountedState, Count>;
export type CountsView = { states: StateCountView; publishers: { id: number; states: StateCountView }[] };

/** Deliveries per state but delivered, overall and, when asked, per undeleted publisher: each up to COUNT_LIMIT. */
export async function counts(parts: DispatchParts, { byPublisher }: { byPublisher: boolean }): Promise<CountsView> {
  await parts.ready();
  const { dispatch } = parts.conveyor.store;
  const publisherIds = byPublisher ? (await dispatch.publisherList({})).map((p) => p.id) : [];
  const read = await dispatch.deliveryCounts({ limit: COUNT_LIMIT + 1, publisherIds });
  const view = (states: Record<CountedState, number>) =>
    Object.fromEntries(
      Object.entries(states).map(([state, n]) => [state, { count: Math.min(n, COUNT_LIMIT), more: n > COUNT_LIMIT }]),
    ) as StateCountView;
  return {
    states: view(read.states),
    publishers: read.publishers.map((p) => ({ id: p.publisherId, states: view(p.states) })),
  };
}

export async function cancel(parts: DispatchParts, id: number): Promise<DeliveryDetail> {
  await parts.ready();
  const cancelled = await parts.conveyor.store.dispatch.deliveryCancel({ id, now: parts.clock.now() });
  if (cancelled === null) throw new NotFoundError("delivery_not_found", `no delivery ${id}`);
  parts.notifier.eventsWritten();
  return view(parts, cancelled);
}

export async function replay(
  parts: DispatchParts,
  publisherId: number,
  window: { from: Date; to: Date },
): Promise<{ replayed: number }> {
  if (!(window.from.getTime() < window.to.getTime()))
    throw new ValidationError("the window must end after it starts", [
      { in: "body", field: "until", message: "is invalid" },
    ]);
  await parts.ready();
  const { dispatch } = parts.conveyor.store;
  if ((await dispatch.publisherGet({ id: publisherId })) === null)
    throw new NotFoundError("publisher_not_found", `no publisher ${publisherId}`);
  let replayed = 0;
  const now = parts.clock.now();
  while (replayed < MAX_REPLAY) {
    const limit = Math.min(REPLAY_BATCH, MAX_REPLAY - replayed);
    const ids = await dispatch.deliveryReplay({ window: { publisherId, ...window }, limit, now });
    replayed += ids.length;
    if (ids.length < limit) break;
  }
  if (replayed > 0) made(parts, now);
  return { replayed };
}

/** Deliveries were made due at `now`: this node's timer and the others' look at once. */
function made(parts: DispatchParts, now: Date): void {
  parts.notifier.eventsWritten();
  parts.timer.due(now);
  parts.conveyor.bus.publish("scheduled", { at: now.getTime() });
}
