/**
 * The handler of `dispatch.deliver` tasks: one attempt of one delivery. It reads the delivery and trusts nothing
 * else: a task whose generation is no longer the delivery's (cancelled, replayed, already sent) sends nothing. A
 * deleted publisher's delivery is discarded, a disabled one's held (no attempt spent), and one whose publisher has
 * no free slot here is put back a moment later. Otherwise it sends, then records the attempt and where the delivery
 * goes next (delivered, scheduled for a retry, failed, or held after a 410, which disables the publisher) in one
 * write; the task itself completes either way, its delivery's state says how it went.
 *
 * Stopped mid-send (a shutdown, a cancel of the task), it records nothing and throws: the runtime hands the task
 * back, and its next run sends again. A write that fails throws too, and the runtime retries the task; a receiver
 * may so get a message twice (at least once), with the same message-id and webhook-id.
 */
import { EventEmitter } from "node:events";
import type { TaskContext } from "../runtime/handler.ts";
import type { AttemptOutcome, AttemptRecord, Delivery, DeliveryWork } from "../store/dispatch-store.ts";
import type { Store } from "../store/store.ts";
import type { AmqpSender } from "./amqp-sender.ts";
import type { Batcher } from "./batcher.ts";
import type { Clock } from "./clock.ts";
import type { HttpSender, SendResult } from "./http-sender.ts";
import type { PublisherSlots } from "./publisher-slots.ts";
import { deliveryBody, httpHeaders, webhookId } from "./request.ts";
import { parseRetryAfter, retryDelay } from "./retry-policy.ts";

/** How long a delivery task waits for its publisher's slot before putting the delivery back. */
const SLOT_WAIT_MS = 1000;
/** When a delivery put back for want of a slot is tried again. */
const SLOT_RETRY_MS = 1000;

export type DeliveryTaskData = { delivery: number; generation: number };

/** What happened to deliveries on this node (tests and logs wait on these). */
export type DeliveryEventMap = {
  "delivery:attempted": [{ delivery: Delivery; outcome: AttemptOutcome; status: number | null; error: string | null }];
  "delivery:settled": [{ delivery: Delivery; reason: string }];
};

export class DispatchEvents extends EventEmitter<DeliveryEventMap> {}

export type DeliverDeps = {
  store: Store;
  /** Reads deliveries for their tasks, many in one statement (batcher.ts). */
  work: Batcher<number, DeliveryWork | null>;
  /** Records attempts, many in one transaction (batcher.ts). */
  records: Batcher<AttemptRecord, Delivery | null>;
  clock: Clock;
  random: () => number;
  http: HttpSender;
  amqp: AmqpSender;
  slots: PublisherSlots;
  events: DispatchEvents;
  /** A delivery is due again at `at`: the retry timer may have to wake sooner. */
  scheduled: (at: Date) => void;
  /** Disable a publisher whose every attempt has failed for this long when a delivery runs out (null: never). */
  autoDisableAfterMs: number | null;
};

export function deliverHandler(deps: DeliverDeps) {
  return async (data: DeliveryTaskData, ctx: TaskContext) => {
    const work = await deps.work.add(data.delivery);
    if (work === null) return { skipped: "no such delivery" };
    const { delivery, publisher } = work;
    if (delivery.generation !== data.generation || delivery.state !== "pending") return { skipped: "stale" };
    if (publisher.deleted) return settle(deps, work, "discarded", null, "publisher deleted");
    if (!publisher.active) return settle(deps, work, "held", null, "publisher disabled");
    const release = await deps.slots.take(publisher.id, publisher.concurrency, SLOT_WAIT_MS, ctx.signal);
    if (release === null) {
      if (ctx.signal.aborted) throw new Error(`stopped: ${String(ctx.signal.reason)}`);
      const later = new Date(deps.clock.now().getTime() + SLOT_RETRY_MS * (0.5 + deps.random()));
      return settle(deps, work, "scheduled", later, "publisher at its concurrency");
    }
    const at = deps.clock.now();
    let sent: { result: SendResult; request: { target: string; headers: Record<string, string> } };
    try {
      sent = await send(deps, work, at, ctx.signal);
    } finally {
      release();
    }
    if (ctx.signal.aborted) throw new Error(`stopped while sending: ${String(ctx.signal.reason)}`);
    return record(deps, work, at, sent, ctx.id);
  };
}

async function send(deps: DeliverDeps, work: DeliveryWork, at: Date, signal: AbortSignal) {
  const { message, publisher, delivery } = work;
  const body = deliveryBody(message.payload, message.attributes);
  const timeoutMs = publisher.secondsTimeout * 1000;
  if (publisher.type === "amqp") {
    const headers = { routingKey: message.topicName, messageId: webhookId(delivery.id) };
    const result = await deps.amqp.send({
      exchange: publisher.target,
      routingKey: message.topicName,
      body,
      messageId: webhookId(delivery.id),
      headers: message.attributes,
      timeoutMs,
      signal,
    });
    return { result, request: { target: publisher.target, headers } };
  }
  const headers = httpHeaders(work, body, at);
  const result = await deps.http.send({ target: publisher.target, body, headers, timeoutMs, signal });
  return { result, request: { target: publisher.target, headers } };
}

async function record(
  deps: DeliverDeps,
  work: DeliveryWork,
  at: Date,
  { result, request }: { result: SendResult; request: { target: string; headers: Record<string, string> } },
  taskId: number,
) {
  const { delivery, publisher } = work;
  const now = deps.clock.now();
  let outcome: AttemptOutcome;
  let nextAttemptAt: Date | null = null;
  let disablePublisher: string | null = null;
  if (result.error === null) outcome = "delivered";
  else if (result.status === 410) {
    outcome = "gone";
    disablePublisher = `${publisher.target} answered 410 Gone`;
  } else {
    const failure = {
      status: result.status,
      timedOut: result.timedOut,
      retryAfterMs: parseRetryAfter(result.retryAfter, now),
    };
    const delay = retryDelay(publisher, delivery.step + 1, failure, deps.random);
    if (delay === null) {
      outcome = "failed";
      const since = publisher.failingSince ?? at;
      if (deps.autoDisableAfterMs !== null && now.getTime() - since.getTime() >= deps.autoDisableAfterMs)
        disablePublisher = `every attempt has failed since ${since.toISOString()}`;
    } else {
      outcome = "retry";
      nextAttemptAt = new Date(now.getTime() + delay);
    }
  }
  const recorded = await deps.records.add({
    deliveryId: delivery.id,
    generation: delivery.generation,
    attempt: {
      taskId,
      at,
      durationMs: result.durationMs,
      status: result.status,
      error: result.error,
      responseBody: result.responseBody,
      request,
    },
    outcome,
    nextAttemptAt,
    disablePublisher,
  });
  if (recorded === null) return { skipped: "stale" };
  if (nextAttemptAt !== null) deps.scheduled(nextAttemptAt);
  deps.events.emit("delivery:attempted", { delivery: recorded, outcome, status: result.status, error: result.error });
  return { state: recorded.state, attempt: recorded.attempts, status: result.status };
}

async function settle(
  deps: DeliverDeps,
  work: DeliveryWork,
  state: "held" | "discarded" | "scheduled",
  nextAttemptAt: Date | null,
  reason: string,
) {
  const { delivery } = work;
  const settled = await deps.store.dispatch.deliverySettle({
    id: delivery.id,
    generation: delivery.generation,
    state,
    nextAttemptAt,
    reason,
    now: deps.clock.now(),
  });
  if (settled === null) return { skipped: "stale" };
  if (nextAttemptAt !== null) deps.scheduled(nextAttemptAt);
  deps.events.emit("delivery:settled", { delivery: settled, reason });
  return { state: settled.state, reason };
}
