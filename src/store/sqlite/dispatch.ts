/**
 * The SQLite driver's DispatchStore (src/store/dispatch-store.ts). It shares the SqliteStore's connection and write
 * transactions: a message, its deliveries and their tasks go in one BEGIN IMMEDIATE, and dispatch's events join
 * that transaction's event-log row, like task events. Its SQL is queries/dispatch.sql; searches are built by
 * ../dispatch-search.ts.
 */
import type { DatabaseSync } from "node:sqlite";
import { ConflictError } from "../../core/errors.ts";
import type { Task } from "../../core/task.ts";
import { buildDeliveryList, buildMessageSearch, type Dialect } from "../dispatch-search.ts";
import { changedEvent, changedEvents, type DispatchEvent, publisherEvent, topicEvent } from "../dispatch-events.ts";
import {
  definedOnly,
  type DispatchRow,
  rowToAttempt,
  rowToDelivery,
  rowToMessage,
  rowToPublisher,
  rowToTopic,
} from "../dispatch-rows.ts";
import type {
  Attempt,
  AttemptRecord,
  Delivery,
  DeliveryCounts,
  DeliveryListParams,
  DeliveryTaskTemplate,
  DeliveryWork,
  DispatchStore,
  Message,
  MessageInput,
  MessageInsertOutcome,
  MessageSearch,
  Publisher,
  PublisherChanges,
  PublisherInput,
  Topic,
  TopicInput,
} from "../dispatch-store.ts";
import type { TaskInsert, TaskInsertOutcome } from "../store.ts";
import { countsOf } from "../dispatch-counts.ts";
import { insertMessages } from "./dispatch-insert.ts";
import { promoteDue, replayDeliveries } from "./dispatch-due.ts";
import { recordAttempts } from "./dispatch-record.ts";
import { DispatchStatements } from "./dispatch-statements.ts";

export type SqliteDispatchDeps = {
  db: DatabaseSync;
  /** The store's write transaction (BEGIN IMMEDIATE … COMMIT, with the journal flushed before COMMIT). */
  write: <T>(work: () => T) => Promise<T>;
  /** Inserts tasks inside the current write transaction (insert.ts). */
  insertTasks: (tasks: TaskInsert[], now: Date) => TaskInsertOutcome[];
  /** Records an event of the current write transaction (the journal). */
  event: (event: DispatchEvent, now: Date) => void;
};

const DIALECT: Dialect = {
  table: (name) => name,
  param: (index) => `?${index}`,
  rowCheck: "",
  messageById: (id) => `JOIN messages m ON m.id = ${id}`,
  wordsSource: (words, param) =>
    `(SELECT rowid AS id FROM message_words WHERE message_words MATCH ${param(words.map((w) => `"${w}"`).join(" "), "text")}) w`,
};

export class SqliteDispatchStore implements DispatchStore {
  readonly #deps: SqliteDispatchDeps;
  readonly #statements: DispatchStatements;

  constructor(deps: SqliteDispatchDeps) {
    this.#deps = deps;
    this.#statements = new DispatchStatements(deps.db);
  }

  #get(name: string, params: Record<string, unknown> = {}): DispatchRow | undefined {
    return this.#statements.get(name).get(params as never) as DispatchRow | undefined;
  }

  #all(name: string, params: Record<string, unknown> = {}): DispatchRow[] {
    return this.#statements.get(name).all(params as never) as DispatchRow[];
  }

  // ---- topics ------------------------------------------------------------------------------------------

  async topicCreate({ topic, now }: { topic: TopicInput; now: Date }): Promise<Topic> {
    return this.#deps.write(() => {
      if (this.#get("topicByName", { name: topic.name }) !== undefined)
        throw new ConflictError("duplicate_topic", `topic ${topic.name} exists`);
      const row = this.#get("topicInsert", {
        name: topic.name,
        origin_host: topic.originHost,
        recovery_enabled: topic.recoveryEnabled ? 1 : 0,
        now: now.getTime(),
      });
      const created = rowToTopic(row!);
      this.#deps.event(topicEvent(created, "created"), now);
      return created;
    });
  }

  async topicGet({ id, name }: { id?: number; name?: string }): Promise<Topic | null> {
    const row = id !== undefined ? this.#get("topicById", { id }) : this.#get("topicByName", { name: name ?? "" });
    return row === undefined ? null : rowToTopic(row);
  }

  async topicList(): Promise<Topic[]> {
    return this.#all("topicList").map((row) => rowToTopic(row));
  }

  async topicUpdate({
    id,
    changes,
    now,
  }: {
    id: number;
    changes: Partial<Pick<Topic, "originHost" | "recoveryEnabled">>;
    now: Date;
  }): Promise<Topic | null> {
    return this.#deps.write(() => {
      const row = this.#get("topicById", { id });
      if (row === undefined) return null;
      const merged = { ...rowToTopic(row), ...definedOnly(changes) };
      const updated = rowToTopic(
        this.#get("topicWrite", {
          id,
          origin_host: merged.originHost,
          recovery_enabled: merged.recoveryEnabled ? 1 : 0,
          now: now.getTime(),
        })!,
      );
      this.#deps.event(topicEvent(updated, "updated"), now);
      return updated;
    });
  }

  async topicRecoveryHosts(): Promise<string[]> {
    return this.#all("topicRecoveryHosts").map((row) => String(row.origin_host));
  }

  // ---- publishers --------------------------------------------------------------------------------------

  async publisherCreate({ publisher, now }: { publisher: PublisherInput; now: Date }): Promise<Publisher> {
    return this.#deps.write(() => {
      let id: number;
      try {
        id = Number(this.#get("publisherInsert", { ...publisherColumns(publisher), now: now.getTime() })!.id);
      } catch (error) {
        throw uniqueToConflict(error, publisher);
      }
      const created = rowToPublisher(this.#get("publisherById", { id })!);
      this.#deps.event(publisherEvent(created, "created"), now);
      return created;
    });
  }

  async publisherGet({ id }: { id: number }): Promise<Publisher | null> {
    const row = this.#get("publisherById", { id });
    return row === undefined ? null : rowToPublisher(row);
  }

  async publisherList({
    topicId,
    includeDeleted,
  }: {
    topicId?: number;
    includeDeleted?: boolean;
  }): Promise<Publisher[]> {
    return this.#all("publisherList", { topic_id: topicId ?? null, deleted: includeDeleted ? 1 : 0 }).map((row) =>
      rowToPublisher(row),
    );
  }

  async publisherUpdate({
    id,
    changes,
    now,
  }: {
    id: number;
    changes: PublisherChanges;
    now: Date;
  }): Promise<{ publisher: Publisher; released: number } | null> {
    return this.#deps.write(() => {
      const row = this.#get("publisherById", { id });
      if (row === undefined) return null;
      const before = rowToPublisher(row);
      if (before.deleted) return null;
      const merged = { ...before, ...definedOnly(changes) };
      try {
        const { topic_id: _topic, type: _type, ...columns } = publisherColumns(merged);
        this.#statements.get("publisherWrite").run({
          id,
          ...columns,
          disabled_reason: merged.active ? null : merged.disabledReason,
          now: now.getTime(),
        });
      } catch (error) {
        throw uniqueToConflict(error, merged);
      }
      const publisher = rowToPublisher(this.#get("publisherById", { id })!);
      const enabled = publisher.active && !before.active;
      const change = enabled ? "enabled" : !publisher.active && before.active ? "disabled" : "updated";
      this.#deps.event(publisherEvent(publisher, change, publisher.disabledReason), now);
      let released = 0;
      if (enabled) {
        const ids = this.#all("deliveriesRelease", { publisher_id: id, now: now.getTime() }).map((r) => Number(r.id));
        released = ids.length;
        if (released > 0)
          this.#deps.event(changedEvent(publisher.topicName, ids, "scheduled", "publisher enabled", id), now);
      }
      return { publisher, released };
    });
  }

  async publisherDelete({ id, now }: { id: number; now: Date }): Promise<Publisher | null> {
    return this.#deps.write(() => {
      const row = this.#get("publisherById", { id });
      if (row === undefined) return null;
      if (rowToPublisher(row).deleted) return rowToPublisher(row);
      this.#statements.get("publisherMarkDeleted").run({ id, now: now.getTime() });
      const publisher = rowToPublisher(this.#get("publisherById", { id })!);
      this.#deps.event(publisherEvent(publisher, "deleted"), now);
      const ids = this.#all("deliveriesDiscard", { publisher_id: id, now: now.getTime() }).map((r) => Number(r.id));
      if (ids.length > 0)
        this.#deps.event(changedEvent(publisher.topicName, ids, "discarded", "publisher deleted", id), now);
      return publisher;
    });
  }

  // ---- messages ----------------------------------------------------------------------------------------

  async messageInsert(params: {
    topicId: number;
    messages: MessageInput[];
    runAt: Date;
    task: DeliveryTaskTemplate;
    now: Date;
  }): Promise<{ outcomes: MessageInsertOutcome[]; tasks: Task[] }> {
    return this.#deps.write(() => {
      const topic = this.#get("topicById", { id: params.topicId });
      if (topic === undefined) throw new Error(`messageInsert: no topic ${params.topicId}`);
      return insertMessages(
        { statements: this.#statements, insertTasks: this.#deps.insertTasks, event: this.#deps.event },
        { ...params, topicName: String(topic.name) },
      );
    });
  }

  async messageGet({ id }: { id: number }): Promise<Message | null> {
    const row = this.#get("messageById", { id });
    return row === undefined ? null : rowToMessage(row);
  }

  async messageSearch(search: MessageSearch): Promise<Message[]> {
    const values: unknown[] = [];
    const { text } = buildMessageSearch(search, DIALECT, values);
    const rows = this.#statements.built(text).all(...(values.map(sqliteValue) as never[])) as DispatchRow[];
    return rows.map((row) => rowToMessage(row));
  }

  // ---- deliveries --------------------------------------------------------------------------------------

  async deliveryGet({ id }: { id: number }): Promise<Delivery | null> {
    const row = this.#get("deliveryById", { id });
    return row === undefined ? null : rowToDelivery(row);
  }

  async deliveryListForMessage({ messageId }: { messageId: number }): Promise<Delivery[]> {
    return this.#all("deliveriesOfMessage", { message_id: messageId }).map((row) => rowToDelivery(row));
  }

  async deliveryList(params: DeliveryListParams): Promise<Delivery[]> {
    const values: unknown[] = [];
    const { text } = buildDeliveryList(params, DIALECT, values);
    const rows = this.#statements.built(text).all(...(values.map(sqliteValue) as never[])) as DispatchRow[];
    return rows.map((row) => rowToDelivery(row));
  }

  async deliveryWork({ id }: { id: number }): Promise<DeliveryWork | null> {
    return (await this.deliveryWorkMany({ ids: [id] }))[0] ?? null;
  }

  async deliveryWorkMany({ ids }: { ids: number[] }): Promise<DeliveryWork[]> {
    if (ids.length === 0) return [];
    return this.#all("deliveryWork", { ids: JSON.stringify(ids) }).map((row) => {
      const topic = String(row.t_name);
      return {
        delivery: rowToDelivery(row, "d_"),
        message: rowToMessage(row, "m_", topic),
        publisher: rowToPublisher(row, "p_", topic),
      };
    });
  }

  async deliveryRecord({ record, now }: { record: AttemptRecord; now: Date }): Promise<Delivery | null> {
    return (await this.deliveryRecordMany({ records: [record], now }))[0] ?? null;
  }

  async deliveryRecordMany({ records, now }: { records: AttemptRecord[]; now: Date }): Promise<(Delivery | null)[]> {
    if (records.length === 0) return [];
    return this.#deps.write(() => recordAttempts(this.#statements, this.#deps, records, now));
  }

  async deliverySettle(params: {
    id: number;
    generation: number;
    state: "held" | "discarded" | "scheduled";
    nextAttemptAt: Date | null;
    reason: string;
    now: Date;
  }): Promise<Delivery | null> {
    return this.#deps.write(() => {
      const row = this.#get("deliverySettle", {
        id: params.id,
        generation: params.generation,
        state: params.state,
        next_attempt_at: params.nextAttemptAt?.getTime() ?? null,
        now: params.now.getTime(),
      });
      if (row === undefined) return null;
      const delivery = rowToDelivery(row);
      const topics = this.#all("topicOfDeliveries", { ids: JSON.stringify([delivery.id]) });
      for (const event of changedEvents(
        topics.map((t) => ({ id: Number(t.id), topic: String(t.topic) })),
        delivery.state,
        params.reason,
      ))
        this.#deps.event(event, params.now);
      return delivery;
    });
  }

  async deliveryPromoteDue({
    now,
    limit,
    task,
  }: {
    now: Date;
    limit: number;
    task: DeliveryTaskTemplate;
  }): Promise<Task[]> {
    return this.#deps.write(() => promoteDue(this.#statements, this.#deps, { now, limit, task }));
  }

  async deliveryNextDueAt(): Promise<Date | null> {
    const at = this.#get("deliveryNextDueAt")?.at;
    return at === null || at === undefined ? null : new Date(Number(at));
  }

  async deliveryReplay(params: {
    ids?: number[];
    window?: { publisherId: number; from: Date; to: Date };
    limit: number;
    now: Date;
  }): Promise<number[]> {
    return this.#deps.write(() => replayDeliveries(this.#statements, this.#deps, params));
  }

  async deliveryRetryNow({ id, now }: { id: number; now: Date }): Promise<Delivery | null> {
    return this.#deps.write(() => {
      const row = this.#get("deliveryRetryNow", { id, now: now.getTime() });
      if (row === undefined) return null;
      const [topic] = this.#all("topicOfDeliveries", { ids: JSON.stringify([id]) });
      this.#deps.event(changedEvent(String(topic!.topic), [id], "scheduled", "retry now"), now);
      return rowToDelivery(row);
    });
  }

  async deliveryCounts({ limit, publisherIds }: { limit: number; publisherIds: number[] }): Promise<DeliveryCounts> {
    const overall = this.#all("deliveryCounts", { limit });
    const byPublisher =
      publisherIds.length === 0
        ? []
        : this.#all("deliveryCountsByPublisher", { limit, ids: JSON.stringify(publisherIds) });
    return countsOf(overall, byPublisher, publisherIds);
  }

  async deliveryCancel({ id, now }: { id: number; now: Date }): Promise<Delivery | null> {
    return this.#deps.write(() => {
      const row = this.#get("deliveryCancel", { id, now: now.getTime() });
      if (row === undefined) {
        const current = this.#get("deliveryById", { id });
        return current === undefined ? null : rowToDelivery(current);
      }
      const delivery = rowToDelivery(row);
      const [topic] = this.#all("topicOfDeliveries", { ids: JSON.stringify([id]) });
      this.#deps.event(changedEvent(String(topic!.topic), [id], "cancelled", "cancelled by request"), now);
      return delivery;
    });
  }

  async attemptList({ deliveryId }: { deliveryId: number }): Promise<Attempt[]> {
    return this.#all("attemptList", { delivery_id: deliveryId }).map(rowToAttempt);
  }
}

function publisherColumns(p: PublisherInput | (Publisher & PublisherChanges)) {
  return {
    topic_id: p.topicId,
    target: p.target,
    type: p.type,
    active: p.active ? 1 : 0,
    seconds_timeout: p.secondsTimeout,
    seconds_retry: p.secondsRetry,
    retry_mode: p.retryMode,
    max_attempts: p.maxAttempts,
    chunk_size: p.chunkSize,
    concurrency: p.concurrency,
    secrets: JSON.stringify(p.secrets),
  };
}

function uniqueToConflict(error: unknown, p: { target: string; type: string }): unknown {
  return error instanceof Error && /UNIQUE constraint failed/.test(error.message)
    ? new ConflictError("duplicate_publisher", `the topic has a ${p.type} publisher for ${p.target} already`)
    : error;
}

/** SQLite binds numbers, strings, null: Dates go as epoch milliseconds. */
function sqliteValue(value: unknown): unknown {
  return value instanceof Date ? value.getTime() : value;
}
