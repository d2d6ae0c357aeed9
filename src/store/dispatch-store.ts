/**
 * The DispatchStore: the store operations of dispatch (src/dispatch, docs/dispatch.md), kept apart from the task
 * operations of store.ts and reached as `store.dispatch`. Noun-first, one params object each, `now` from the caller,
 * one transaction per operation; both drivers pass conformance/dispatch.ts.
 *
 * A delivery is carried out by Conveyor tasks. When a delivery needs sending (a message's, created ready; a scheduled
 * one, promoted when due), the same transaction inserts its task from the caller's template, with data
 * `{ delivery: <id>, generation: <n> }`, and returns the tasks it inserted so that the caller can wake their queue.
 * Whatever else makes a delivery due (a publisher enabled, a replay) makes it scheduled for now, and the retry timer
 * promotes it: a bounded batch of tasks per transaction, however many deliveries a publisher holds.
 * `generation` changes each time a delivery gets a new task or stops wanting one; a task whose generation is no
 * longer its delivery's is stale, and deliveryRecord refuses its attempt.
 *
 * Every operation that changes dispatch's state appends its events to the event log in its own transaction, on
 * channel `topic:<name>` (or `dispatch` for what belongs to no topic): DISPATCH_EVENTS below.
 */
import type { Json, Task } from "../core/task.ts";
import type { TaskInsert } from "./store.ts";

export type PublisherType = "http" | "amqp";
/** `schedule`: the Svix-like schedule with jitter; `fixed`: every `secondsRetry` (Postoffice's seconds_retry). */
export type RetryMode = "schedule" | "fixed";

/**
 * scheduled: waiting for `nextAttemptAt` (a retry, or a scheduled message), no task yet; pending: a task carries
 * it now; held: its publisher is disabled, nothing is spent until it is enabled again; delivered; failed: out of
 * attempts (replayable); discarded: its publisher was deleted; cancelled: by a person (replayable).
 */
export type DeliveryState = "scheduled" | "pending" | "held" | "delivered" | "failed" | "discarded" | "cancelled";

export const DELIVERY_STATES: readonly DeliveryState[] = [
  "scheduled",
  "pending",
  "held",
  "delivered",
  "failed",
  "discarded",
  "cancelled",
];

/** The states counted by deliveryCounts: all but delivered (nearly every delivery, kept out of the partial indexes). */
export type CountedState = Exclude<DeliveryState, "delivered">;

export const COUNTED_STATES: readonly CountedState[] = DELIVERY_STATES.filter(
  (state): state is CountedState => state !== "delivered",
);

/** Deliveries per counted state, each at most the `limit` asked for. */
export type StateCounts = Record<CountedState, number>;

export type DeliveryCounts = { states: StateCounts; publishers: { publisherId: number; states: StateCounts }[] };

/** The states a replay takes a delivery out of (a discarded one's publisher is deleted: it has nowhere to go). */
export const REPLAYABLE_STATES: readonly DeliveryState[] = ["failed", "cancelled"];

export type Topic = {
  id: number;
  name: string;
  originHost: string;
  recoveryEnabled: boolean;
  createdAt: Date;
  updatedAt: Date;
};

export type TopicInput = { name: string; originHost: string; recoveryEnabled: boolean };

/** A signing secret (`whsec_…`); an old one signs alongside the new until it expires (a rotation). */
export type SigningSecret = { secret: string; expiresAt: string | null };

export type Publisher = {
  id: number;
  topicId: number;
  topicName: string;
  target: string;
  type: PublisherType;
  active: boolean;
  deleted: boolean;
  secondsTimeout: number;
  secondsRetry: number;
  retryMode: RetryMode;
  /** Attempts per delivery (null: the retry mode's default). */
  maxAttempts: number | null;
  chunkSize: number | null;
  /** Deliveries this publisher gets at once on a node (null: no limit but the queue's). */
  concurrency: number | null;
  secrets: SigningSecret[];
  disabledReason: string | null;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

export type PublisherInput = Pick<
  Publisher,
  | "topicId"
  | "target"
  | "type"
  | "active"
  | "secondsTimeout"
  | "secondsRetry"
  | "retryMode"
  | "maxAttempts"
  | "chunkSize"
  | "concurrency"
  | "secrets"
>;

export type PublisherChanges = Partial<
  Pick<
    Publisher,
    | "target"
    | "active"
    | "secondsTimeout"
    | "secondsRetry"
    | "retryMode"
    | "maxAttempts"
    | "chunkSize"
    | "concurrency"
    | "secrets"
    | "disabledReason"
  >
>;

export type Message = {
  id: number;
  topicId: number;
  topicName: string;
  payload: Json;
  attributes: { [key: string]: Json };
  idempotencyKey: string | null;
  receivedAt: Date;
};

export type MessageInput = { payload: Json; attributes: { [key: string]: Json }; idempotencyKey: string | null };

export type Delivery = {
  id: number;
  messageId: number;
  publisherId: number;
  state: DeliveryState;
  generation: number;
  attempts: number;
  step: number;
  nextAttemptAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  receivedAt: Date;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
};

/** How an attempt ended: delivered, to be retried, failed for good, or gone (410: the publisher is disabled). */
export type AttemptOutcome = "delivered" | "retry" | "failed" | "gone";

export type Attempt = {
  id: number;
  deliveryId: number;
  attempt: number;
  taskId: number | null;
  at: Date;
  durationMs: number;
  status: number | null;
  outcome: AttemptOutcome;
  error: string | null;
  responseBody: string | null;
  request: { target: string; headers: { [name: string]: string } };
  nextAttemptAt: Date | null;
};

/** What a delivery task is made of, besides what the store fills in: data, key (none) and runAt (now). */
export type DeliveryTaskTemplate = Omit<TaskInsert, "data" | "key" | "runAt">;

/** The task that sends delivery `delivery` of generation `generation`, due now. */
export function deliveryTask(
  template: DeliveryTaskTemplate,
  delivery: number,
  generation: number,
  now: Date,
): TaskInsert {
  return { ...template, data: { delivery, generation }, key: null, runAt: now };
}

/** What the handler of a delivery task reads before sending: the delivery with its message, publisher and topic. */
export type DeliveryWork = { delivery: Delivery; message: Message; publisher: Publisher };

export type MessageInsertOutcome = {
  message: { id: number; receivedAt: Date };
  /** False when a message with its idempotency key existed: `deliveries` are that message's. */
  created: boolean;
  deliveries: { id: number; publisherId: number; state: DeliveryState }[];
};

/** A search page's position: the (receivedAt, id) of the last message of the previous page. */
export type MessageCursor = { receivedAt: Date; id: number };

export type MessageSearch = {
  topicId?: number;
  /** Messages with this attribute (its value as text: a string as it is, anything else as JSON). */
  attribute?: { key: string; value: string };
  /** Words (letters and digits) that must all be in the payload. */
  words?: string[];
  /** Received at or after. */
  from?: Date;
  /** Received before. */
  to?: Date;
  /** Messages with at least one delivery in this state. */
  state?: DeliveryState;
  before?: MessageCursor;
  limit: number;
};

/** A deliveries page's position: the last delivery of the previous page. */
export type DeliveryCursor = { receivedAt: Date; messageId: number; publisherId: number };

export type DeliveryListParams = {
  /** One state other than delivered (delivered ones are found through their messages). */
  state: Exclude<DeliveryState, "delivered">;
  publisherId?: number;
  before?: DeliveryCursor;
  limit: number;
};

/** What deliveryRecord writes for one attempt, and where it leaves the delivery. */
export type AttemptRecord = {
  deliveryId: number;
  generation: number;
  attempt: Omit<Attempt, "id" | "deliveryId" | "attempt" | "outcome" | "nextAttemptAt">;
  outcome: AttemptOutcome;
  /** When to try again (outcome retry). */
  nextAttemptAt: Date | null;
  /** Disable the publisher, with this reason (a 410, or failing for too long). */
  disablePublisher: string | null;
};

/** Names of the events dispatch appends to the log (core/task.ts CHANNEL_EVENT_TYPES lists them). */
export const DISPATCH_EVENTS = {
  /** Messages were received: {topic, messages: [ids], deliveries: n, held: n, scheduled: n}. */
  received: "dispatch.received",
  /** An attempt ended: {delivery, message, publisher, topic, attempt, status, durationMs, outcome, state, nextAttemptAt, error}. */
  attempted: "delivery.attempted",
  /** Deliveries changed state without an attempt: {topic, publisher?, deliveries: [ids], state, reason}. */
  changed: "delivery.changed",
  /** A publisher was created, changed, disabled, enabled or deleted: {publisher, topic, change, active}. */
  publisher: "publisher.changed",
  /** A topic was created or changed: {topic, id, change}. */
  topic: "topic.changed",
} as const;

export interface DispatchStore {
  /** Throws ConflictError duplicate_topic when the name is taken. */
  topicCreate(params: { topic: TopicInput; now: Date }): Promise<Topic>;
  topicGet(params: { id?: number; name?: string }): Promise<Topic | null>;
  topicList(): Promise<Topic[]>;
  /** Null when unknown. */
  topicUpdate(params: {
    id: number;
    changes: Partial<Pick<Topic, "originHost" | "recoveryEnabled">>;
    now: Date;
  }): Promise<Topic | null>;
  /** The distinct origin hosts of topics with recovery enabled. */
  topicRecoveryHosts(): Promise<string[]>;

  /** Throws ConflictError duplicate_publisher when an undeleted publisher of the topic has this target and type. */
  publisherCreate(params: { publisher: PublisherInput; now: Date }): Promise<Publisher>;
  publisherGet(params: { id: number }): Promise<Publisher | null>;
  publisherList(params: { topicId?: number; includeDeleted?: boolean }): Promise<Publisher[]>;
  /**
   * Changes an undeleted publisher; null when unknown or deleted. Enabling it releases its held deliveries in the
   * same transaction: they become scheduled, due now, for the retry timer to give them tasks (`released` counts
   * them). Disabling it holds nothing yet: each delivery is held when its task next runs. Throws ConflictError
   * duplicate_publisher for a taken target.
   */
  publisherUpdate(params: {
    id: number;
    changes: PublisherChanges;
    now: Date;
  }): Promise<{ publisher: Publisher; released: number } | null>;
  /**
   * Soft-deletes a publisher and discards its deliveries that wait without a task (scheduled, held); those with a
   * task are discarded when it runs. Null when unknown; a deleted publisher is returned as it is.
   */
  publisherDelete(params: { id: number; now: Date }): Promise<Publisher | null>;

  /**
   * Inserts messages into a topic with one delivery per undeleted publisher each: pending with a task when the
   * publisher is active and `runAt` has come, scheduled for `runAt` when it has not, held when the publisher is
   * disabled. A message whose idempotency key exists is not inserted again: its outcome is the existing message's.
   */
  messageInsert(params: {
    topicId: number;
    messages: MessageInput[];
    runAt: Date;
    task: DeliveryTaskTemplate;
    now: Date;
  }): Promise<{ outcomes: MessageInsertOutcome[]; tasks: Task[] }>;
  messageGet(params: { id: number }): Promise<Message | null>;
  /** A page of messages, newest first (by receivedAt, then id), each filter read through an index. */
  messageSearch(params: MessageSearch): Promise<Message[]>;

  deliveryGet(params: { id: number }): Promise<Delivery | null>;
  /** The deliveries of a message, by id. */
  deliveryListForMessage(params: { messageId: number }): Promise<Delivery[]>;
  /** A page of deliveries in one state, newest message first. */
  deliveryList(params: DeliveryListParams): Promise<Delivery[]>;
  /** What a delivery task sends: null when the delivery is unknown. */
  deliveryWork(params: { id: number }): Promise<DeliveryWork | null>;
  /** deliveryWork for many deliveries in one read (those that exist, in any order): a batch of tasks' reads. */
  deliveryWorkMany(params: { ids: number[] }): Promise<DeliveryWork[]>;
  /**
   * Records an attempt of a pending delivery made by the task of `generation`, and moves the delivery on: delivered,
   * scheduled for `nextAttemptAt` (retry), failed, or held (gone); optionally disables the publisher. Null, writing
   * nothing, when the generation is stale or the delivery is not pending.
   */
  deliveryRecord(params: { record: AttemptRecord; now: Date }): Promise<Delivery | null>;
  /**
   * deliveryRecord for many attempts (of distinct deliveries) in one transaction: the group commit of the delivery
   * tasks that finished together. The outcomes are in the records' order.
   */
  deliveryRecordMany(params: { records: AttemptRecord[]; now: Date }): Promise<(Delivery | null)[]>;
  /**
   * Moves a pending delivery that its task found it could not send to `state` without spending an attempt: held
   * (publisher disabled), discarded (publisher deleted), or scheduled for `nextAttemptAt` (no free slot). Null when
   * the generation is stale.
   */
  deliverySettle(params: {
    id: number;
    generation: number;
    state: "held" | "discarded" | "scheduled";
    nextAttemptAt: Date | null;
    reason: string;
    now: Date;
  }): Promise<Delivery | null>;
  /** Moves up to `limit` scheduled deliveries due at `now` to pending, with a task each. */
  deliveryPromoteDue(params: { now: Date; limit: number; task: DeliveryTaskTemplate }): Promise<Task[]>;
  /** The earliest nextAttemptAt of a scheduled delivery. */
  deliveryNextDueAt(): Promise<Date | null>;
  /**
   * Sends deliveries again from the start of the retry schedule: those of `ids`, or up to `limit` of a publisher's
   * received in [from, to), that are in REPLAYABLE_STATES and whose publisher is not deleted. Each becomes scheduled,
   * due now (the retry timer gives it a task), or held when its publisher is disabled. Returns the ids replayed.
   */
  deliveryReplay(params: {
    ids?: number[];
    window?: { publisherId: number; from: Date; to: Date };
    limit: number;
    now: Date;
  }): Promise<number[]>;
  /**
   * Makes a scheduled delivery (waiting for its next attempt, with no task) due at `now`, when its next attempt is
   * later, for the retry timer to give it a task: no attempt is spent, its place in the retry schedule stays, and its
   * generation does not change (it has no task to make stale). Null, writing nothing, unless it is scheduled.
   */
  deliveryRetryNow(params: { id: number; now: Date }): Promise<Delivery | null>;
  /**
   * How many deliveries are in each state but delivered, overall and for each of `publisherIds`, counted up to
   * `limit` each (a count of `limit` means at least that many): a walk of at most `limit` entries of a partial
   * index per count, whatever the size of the table.
   */
  deliveryCounts(params: { limit: number; publisherIds: number[] }): Promise<DeliveryCounts>;
  /** Cancels a delivery that is not finished (its task, if any, becomes stale). Null when unknown. */
  deliveryCancel(params: { id: number; now: Date }): Promise<Delivery | null>;

  /** Every attempt of a delivery, oldest first. */
  attemptList(params: { deliveryId: number }): Promise<Attempt[]>;
}
