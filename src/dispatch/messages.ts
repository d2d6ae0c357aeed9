/**
 * Dispatch's messages: sending (one transaction per call: the messages, one delivery per publisher, the tasks of
 * those ready), idempotency keys, search, a message's detail with every delivery and attempt, and recovery from the
 * origin hosts (recovery.ts), which sends what it finds.
 */
import { ConflictError, NotFoundError, ValidationError } from "../core/errors.ts";
import type { Json } from "../core/task.ts";
import { storableText } from "../core/task-input.ts";
import type {
  Attempt,
  Delivery,
  DeliveryState,
  Message,
  MessageInput,
  MessageSearch,
  Publisher,
} from "../store/dispatch-store.ts";
import { messageCursor, parseMessageCursor } from "./cursors.ts";
import { checkMessage, INVALID, searchWords } from "./inputs.ts";
import type { DispatchParts } from "./parts.ts";
import { recoverHost } from "./recovery.ts";

export type SendOptions = {
  /** A repeat with the same key answers the first call's outcome and writes nothing (`<key>:<n>` per message of a batch). */
  idempotencyKey?: string | null;
  /** When to deliver (later than now: the deliveries wait, scheduled). */
  scheduleAt?: Date;
};

export type SendOutcome = {
  messages: { id: number; created: boolean; deliveries: { id: number; publisherId: number; state: DeliveryState }[] }[];
  /** Every delivery's id, message by message: what Postoffice's API answers. */
  deliveryIds: number[];
};

export async function send(
  parts: DispatchParts,
  topicName: string,
  inputs: { payload: Json; attributes?: { [key: string]: Json } }[],
  options: SendOptions = {},
): Promise<SendOutcome> {
  if (inputs.length > parts.options.maxBulkMessages)
    throw new ValidationError(`at most ${parts.options.maxBulkMessages} messages at once`);
  const key = options.idempotencyKey ?? null;
  if (key !== null && (typeof key !== "string" || !storableText(key)))
    throw new ValidationError("the idempotency key must be text without NUL characters or lone surrogates", [
      { in: "options", field: "idempotencyKey", message: INVALID },
    ]);
  const messages: MessageInput[] = inputs.map((input, n) => ({
    ...checkMessage(input),
    idempotencyKey: key === null ? null : inputs.length === 1 ? key : `${key}:${n}`,
  }));
  await parts.ready();
  const { store } = parts.conveyor;
  const topic = await store.dispatch.topicGet({ name: topicName });
  if (topic === null)
    throw new ValidationError(`no topic named ${JSON.stringify(topicName)}`, [
      { in: "body", field: "topic", message: INVALID },
    ]);
  const now = parts.clock.now();
  const runAt = options.scheduleAt ?? now;
  const { outcomes, tasks } = await store.dispatch.messageInsert({
    topicId: topic.id,
    messages,
    runAt,
    task: parts.task,
    now,
  });
  if (key !== null && inputs.length === 1 && !outcomes[0]!.created)
    await checkSameMessage(parts, outcomes[0]!.message.id, topic.id, messages[0]!);
  if (tasks.length > 0) parts.notifier.tasksWritten(tasks);
  else if (outcomes.some((o) => o.created)) parts.notifier.eventsWritten();
  if (runAt.getTime() > now.getTime()) {
    parts.timer.due(runAt);
    parts.conveyor.bus.publish("scheduled", { at: runAt.getTime() });
  }
  return {
    messages: outcomes.map((o) => ({ id: o.message.id, created: o.created, deliveries: o.deliveries })),
    deliveryIds: outcomes.flatMap((o) => o.deliveries.map((d) => d.id)),
  };
}

/** An idempotency key used again must come with the same message: else the call is refused (nothing was written). */
async function checkSameMessage(parts: DispatchParts, id: number, topicId: number, input: MessageInput): Promise<void> {
  const existing = await parts.conveyor.store.dispatch.messageGet({ id });
  const same =
    existing !== null &&
    existing.topicId === topicId &&
    JSON.stringify(existing.payload) === JSON.stringify(input.payload) &&
    JSON.stringify(existing.attributes) === JSON.stringify(input.attributes);
  if (!same)
    throw new ConflictError(
      "idempotency_conflict",
      `the idempotency key ${input.idempotencyKey} was used for another message`,
    );
}

export type MessageQuery = {
  topic?: string;
  attribute?: { key: string; value: string };
  /** Words the payload must hold (its letters-and-digits runs). */
  text?: string;
  from?: Date;
  to?: Date;
  state?: DeliveryState;
  cursor?: string;
  limit?: number;
};

export type MessagePage = { messages: Message[]; nextCursor: string | null };

export async function search(parts: DispatchParts, query: MessageQuery): Promise<MessagePage> {
  await parts.ready();
  const { store } = parts.conveyor;
  const limit = query.limit ?? 50;
  const params: MessageSearch = { limit };
  if (query.topic !== undefined) {
    const topic = await store.dispatch.topicGet({ name: query.topic });
    if (topic === null) throw new NotFoundError("topic_not_found", `no topic named ${JSON.stringify(query.topic)}`);
    params.topicId = topic.id;
  }
  if (query.attribute !== undefined) params.attribute = query.attribute;
  if (query.text !== undefined) params.words = searchWords(query.text);
  if (query.from !== undefined) params.from = query.from;
  if (query.to !== undefined) params.to = query.to;
  if (query.state !== undefined) params.state = query.state;
  if (query.cursor !== undefined) params.before = parseMessageCursor(query.cursor);
  if (query.text !== undefined && params.words!.length === 0) return { messages: [], nextCursor: null };
  const messages = await store.dispatch.messageSearch(params);
  const last = messages.at(-1);
  return { messages, nextCursor: messages.length === limit && last !== undefined ? messageCursor(last) : null };
}

/** A delivery with its publisher's summary and `history`, its attempts (its `attempts` is their count). */
export type DeliveryView = Delivery & {
  publisher: Pick<Publisher, "id" | "target" | "type" | "active" | "deleted">;
  history: Attempt[];
};

export type MessageDetail = { message: Message; deliveries: DeliveryView[] };

export async function detail(parts: DispatchParts, id: number): Promise<MessageDetail> {
  await parts.ready();
  const { dispatch } = parts.conveyor.store;
  const message = await dispatch.messageGet({ id });
  if (message === null) throw new NotFoundError("message_not_found", `no message ${id}`);
  const deliveries = await dispatch.deliveryListForMessage({ messageId: id });
  const views = await Promise.all(deliveries.map((delivery) => view(parts, delivery)));
  return { message, deliveries: views };
}

/** A delivery with its publisher's summary and its attempts. */
export async function view(parts: DispatchParts, delivery: Delivery): Promise<DeliveryView> {
  const { dispatch } = parts.conveyor.store;
  const [publisher, history] = await Promise.all([
    dispatch.publisherGet({ id: delivery.publisherId }),
    dispatch.attemptList({ deliveryId: delivery.id }),
  ]);
  const { id, target, type, active, deleted } = publisher!;
  return { ...delivery, publisher: { id, target, type, active, deleted }, history };
}

/** One pass of recovery over every origin host with recovery enabled. */
export async function recover(parts: DispatchParts): Promise<Json> {
  await parts.ready();
  const hosts = await parts.conveyor.store.dispatch.topicRecoveryHosts();
  const reports = [];
  for (const host of hosts) {
    const report = await recoverHost(host, {
      http: parts.http,
      signal: AbortSignal.timeout(60_000),
      ingest: async (message) => {
        try {
          await send(parts, message.topic, [message], { idempotencyKey: message.idempotencyKey });
          return true;
        } catch (error) {
          if (error instanceof ValidationError || error instanceof ConflictError) return false;
          throw error;
        }
      },
    });
    reports.push(report);
  }
  return reports;
}
