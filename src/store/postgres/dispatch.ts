/**
 * The PostgreSQL driver's DispatchStore (src/store/dispatch-store.ts), on the PostgresStore's pool. Its SQL is
 * queries/dispatch.sql, run as named prepared statements (`<schema>.d.<name>`); searches are built by
 * ../dispatch-search.ts, one prepared statement per shape. What happens on every delivery is one statement each
 * (deliveryWork to read, deliveryRecord to write, events included); a message and its deliveries, and their tasks,
 * commit in one transaction of a few statements (postgres/dispatch-insert.ts).
 */
import { storableText } from "../../core/task-input.ts";
import { ConflictError } from "../../core/errors.ts";
import type { Task } from "../../core/task.ts";
import { changedEvent, type DispatchEvent, publisherEvent } from "../dispatch-events.ts";
import {
  definedOnly,
  type DispatchRow,
  rowToAttempt,
  rowToDelivery,
  rowToMessage,
  rowToPublisher,
  rowToTopic,
} from "../dispatch-rows.ts";
import { buildDeliveryList, buildMessageSearch, type Dialect } from "../dispatch-search.ts";
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
import { channelEntry } from "../event-log.ts";
import { countsOf } from "../dispatch-counts.ts";
import { insertMessages, promoteDue } from "./dispatch-insert.ts";
import { type PostgresDispatchDeps, type Queryable, DispatchRunner } from "./dispatch-runner.ts";

const TYPES = { int: "bigint", text: "text", time: "timestamptz" } as const;

/** Searches as this driver writes them: tables in the install's schema, words through messages_words. */
function dialect(qualifier: string): Dialect {
  const table = (name: string) => `${qualifier}${name}`;
  return {
    table,
    param: (index, type) => `$${index}::${TYPES[type]}`,
    rowCheck: " OFFSET 0",
    messageById: (id) => `CROSS JOIN LATERAL (SELECT * FROM ${table("messages")} WHERE id = ${id} OFFSET 0) m`,
    // The expression of the messages_words index, word for word, so that the planner matches it.
    wordsSource: (words, param) =>
      `(SELECT id FROM ${table("messages")}
        WHERE to_tsvector('simple', regexp_replace(payload::text, '[^[:alnum:]]+', ' ', 'g'))
          @@ to_tsquery('simple', ${param(words.join(" & "), "text")})) w`,
  };
}

export class PostgresDispatchStore implements DispatchStore {
  readonly #db: DispatchRunner;
  readonly #dialect: Dialect;

  constructor(deps: PostgresDispatchDeps) {
    this.#db = new DispatchRunner(deps);
    this.#dialect = dialect(this.#db.qualifier);
  }

  async #one(name: string, values: unknown[], client?: Queryable): Promise<DispatchRow | undefined> {
    return (await this.#db.run(name, values, client)).rows[0];
  }

  async #all(name: string, values: unknown[], client?: Queryable): Promise<DispatchRow[]> {
    return (await this.#db.run(name, values, client)).rows;
  }

  /** Appends `events` as one log row, inside the caller's transaction. */
  async #log(client: Queryable, events: DispatchEvent[], now: Date): Promise<void> {
    if (events.length === 0) return;
    const entries = events.map(({ type, channel, data }) => channelEntry(type, channel, data));
    await this.#db.runTask("eventAppend", [JSON.stringify(entries), entries.length, now], client);
  }

  // ---- topics ------------------------------------------------------------------------------------------

  async topicCreate({ topic, now }: { topic: TopicInput; now: Date }): Promise<Topic> {
    const row = await this.#one("topicInsert", [topic.name, topic.originHost, topic.recoveryEnabled, now]);
    if (row === undefined) throw new ConflictError("duplicate_topic", `topic ${topic.name} exists`);
    return rowToTopic(row);
  }

  async topicGet({ id, name }: { id?: number; name?: string }): Promise<Topic | null> {
    // No topic has a name PostgreSQL could not take as a parameter (creation refuses it): not found, not an error.
    if (name !== undefined && !storableText(name)) return null;
    const row = id !== undefined ? await this.#one("topicById", [id]) : await this.#one("topicByName", [name ?? ""]);
    return row === undefined ? null : rowToTopic(row);
  }

  async topicList(): Promise<Topic[]> {
    return (await this.#all("topicList", [])).map((row) => rowToTopic(row));
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
    return this.#db.transaction(async (client) => {
      const row = await this.#one("topicById", [id], client);
      if (row === undefined) return null;
      const merged = { ...rowToTopic(row), ...definedOnly(changes) };
      return rowToTopic((await this.#one("topicWrite", [id, merged.originHost, merged.recoveryEnabled, now], client))!);
    });
  }

  async topicRecoveryHosts(): Promise<string[]> {
    return (await this.#all("topicRecoveryHosts", [])).map((row) => String(row.origin_host));
  }

  // ---- publishers --------------------------------------------------------------------------------------

  async publisherCreate({ publisher: p, now }: { publisher: PublisherInput; now: Date }): Promise<Publisher> {
    return this.#db.transaction(async (client) => {
      const inserted = await this.#one(
        "publisherInsert",
        [
          p.topicId,
          p.target,
          p.type,
          p.active,
          p.secondsTimeout,
          p.secondsRetry,
          p.retryMode,
          p.maxAttempts,
          p.chunkSize,
          p.concurrency,
          JSON.stringify(p.secrets),
          now,
        ],
        client,
      );
      if (inserted === undefined) throw duplicatePublisher(p);
      const created = rowToPublisher((await this.#one("publisherById", [inserted.id], client))!);
      await this.#log(client, [publisherEvent(created, "created")], now);
      return created;
    });
  }

  async publisherGet({ id }: { id: number }): Promise<Publisher | null> {
    const row = await this.#one("publisherById", [id]);
    return row === undefined ? null : rowToPublisher(row);
  }

  async publisherList({
    topicId,
    includeDeleted,
  }: {
    topicId?: number;
    includeDeleted?: boolean;
  }): Promise<Publisher[]> {
    const rows = await this.#all("publisherList", [topicId ?? null, includeDeleted ?? false]);
    return rows.map((row) => rowToPublisher(row));
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
    return this.#db.transaction(async (client) => {
      const row = await this.#one("publisherLockById", [id], client);
      if (row === undefined) return null;
      const before = rowToPublisher(row);
      if (before.deleted) return null;
      const m = { ...before, ...definedOnly(changes) };
      try {
        await this.#db.run(
          "publisherWrite",
          [
            id,
            m.target,
            m.active,
            m.secondsTimeout,
            m.secondsRetry,
            m.retryMode,
            m.maxAttempts,
            m.chunkSize,
            m.concurrency,
            JSON.stringify(m.secrets),
            m.active ? null : m.disabledReason,
            now,
          ],
          client,
        );
      } catch (error) {
        throw (error as { code?: unknown }).code === "23505" ? duplicatePublisher(m) : error;
      }
      const publisher = rowToPublisher((await this.#one("publisherById", [id], client))!);
      const enabled = publisher.active && !before.active;
      const change = enabled ? "enabled" : !publisher.active && before.active ? "disabled" : "updated";
      const events = [publisherEvent(publisher, change, publisher.disabledReason)];
      let released = 0;
      if (enabled) {
        const ids = (await this.#all("deliveriesRelease", [id, now], client)).map((r) => Number(r.id));
        released = ids.length;
        if (released > 0)
          events.push(changedEvent(publisher.topicName, sorted(ids), "scheduled", "publisher enabled", id));
      }
      await this.#log(client, events, now);
      return { publisher, released };
    });
  }

  async publisherDelete({ id, now }: { id: number; now: Date }): Promise<Publisher | null> {
    return this.#db.transaction(async (client) => {
      const row = await this.#one("publisherLockById", [id], client);
      if (row === undefined) return null;
      if (rowToPublisher(row).deleted) return rowToPublisher(row);
      await this.#db.run("publisherMarkDeleted", [id, now], client);
      const publisher = rowToPublisher((await this.#one("publisherById", [id], client))!);
      const events = [publisherEvent(publisher, "deleted")];
      const ids = (await this.#all("deliveriesDiscard", [id, now], client)).map((r) => Number(r.id));
      if (ids.length > 0)
        events.push(changedEvent(publisher.topicName, sorted(ids), "discarded", "publisher deleted", id));
      await this.#log(client, events, now);
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
    return this.#db.transaction((client) => insertMessages(this.#db, client, params));
  }

  async messageGet({ id }: { id: number }): Promise<Message | null> {
    const row = await this.#one("messageById", [id]);
    return row === undefined ? null : rowToMessage(row);
  }

  async messageSearch(search: MessageSearch): Promise<Message[]> {
    const built = buildMessageSearch(search, this.#dialect, []);
    const rows = await this.#db.built(`search.${built.shape}`, built.text, built.values);
    return rows.map((row) => rowToMessage(row));
  }

  // ---- deliveries --------------------------------------------------------------------------------------

  async deliveryGet({ id }: { id: number }): Promise<Delivery | null> {
    const row = await this.#one("deliveryById", [id]);
    return row === undefined ? null : rowToDelivery(row);
  }

  async deliveryListForMessage({ messageId }: { messageId: number }): Promise<Delivery[]> {
    return (await this.#all("deliveriesOfMessage", [messageId])).map((row) => rowToDelivery(row));
  }

  async deliveryList(params: DeliveryListParams): Promise<Delivery[]> {
    const built = buildDeliveryList(params, this.#dialect, []);
    const rows = await this.#db.built(`list.${built.shape}`, built.text, built.values);
    return rows.map((row) => rowToDelivery(row));
  }

  async deliveryWork({ id }: { id: number }): Promise<DeliveryWork | null> {
    return (await this.deliveryWorkMany({ ids: [id] }))[0] ?? null;
  }

  async deliveryWorkMany({ ids }: { ids: number[] }): Promise<DeliveryWork[]> {
    if (ids.length === 0) return [];
    return (await this.#all("deliveryWorkMany", [ids])).map(workOf);
  }

  async deliveryRecord({ record, now }: { record: AttemptRecord; now: Date }): Promise<Delivery | null> {
    return (await this.deliveryRecordMany({ records: [record], now }))[0] ?? null;
  }

  async deliveryRecordMany({ records, now }: { records: AttemptRecord[]; now: Date }): Promise<(Delivery | null)[]> {
    if (records.length === 0) return [];
    const rows = records.map(({ deliveryId, generation, attempt, outcome, nextAttemptAt, disablePublisher }) => [
      deliveryId,
      generation,
      { delivered: "delivered", retry: "scheduled", failed: "failed", gone: "held" }[outcome],
      outcome === "retry" || outcome === "failed" ? 1 : 0,
      nextAttemptAt,
      attempt.status,
      attempt.error,
      attempt.taskId,
      attempt.at,
      Math.round(attempt.durationMs),
      outcome,
      attempt.responseBody,
      attempt.request,
      disablePublisher,
      nextAttemptAt?.toISOString() ?? null,
    ]);
    const moved = await this.#all("deliveryRecordMany", [JSON.stringify(rows), now]);
    const byOrdinal = new Map(moved.map((row) => [Number(row.ord), rowToDelivery(row)]));
    return records.map((_, i) => byOrdinal.get(i + 1) ?? null);
  }

  async deliverySettle(params: {
    id: number;
    generation: number;
    state: "held" | "discarded" | "scheduled";
    nextAttemptAt: Date | null;
    reason: string;
    now: Date;
  }): Promise<Delivery | null> {
    const { id, generation, state, nextAttemptAt, now, reason } = params;
    const row = await this.#one("deliverySettle", [id, generation, state, nextAttemptAt, now, reason]);
    return row === undefined ? null : rowToDelivery(row);
  }

  async deliveryPromoteDue(params: { now: Date; limit: number; task: DeliveryTaskTemplate }): Promise<Task[]> {
    return this.#db.transaction((client) => promoteDue(this.#db, client, params));
  }

  async deliveryNextDueAt(): Promise<Date | null> {
    const row = await this.#one("deliveryNextDueAt", []);
    return row === undefined ? null : (row.at as Date);
  }

  async deliveryReplay(params: {
    ids?: number[];
    window?: { publisherId: number; from: Date; to: Date };
    limit: number;
    now: Date;
  }): Promise<number[]> {
    const { window, now, limit } = params;
    const ids = window === undefined ? (params.ids ?? []).slice(0, limit) : null;
    const rows = await this.#all("deliveryReplay", [
      ids,
      window?.publisherId ?? null,
      window?.from ?? null,
      window?.to ?? null,
      limit,
      now,
    ]);
    return rows.map((row) => Number(row.id));
  }

  async deliveryRetryNow({ id, now }: { id: number; now: Date }): Promise<Delivery | null> {
    const row = await this.#one("deliveryRetryNow", [id, now]);
    return row === undefined ? null : rowToDelivery(row);
  }

  async deliveryCounts({ limit, publisherIds }: { limit: number; publisherIds: number[] }): Promise<DeliveryCounts> {
    const [overall, byPublisher] = await Promise.all([
      this.#all("deliveryCounts", [limit]),
      publisherIds.length === 0 ? [] : this.#all("deliveryCountsByPublisher", [limit, publisherIds]),
    ]);
    return countsOf(overall, byPublisher, publisherIds);
  }

  async deliveryCancel({ id, now }: { id: number; now: Date }): Promise<Delivery | null> {
    const row = (await this.#one("deliveryCancel", [id, now])) ?? (await this.#one("deliveryById", [id]));
    return row === undefined ? null : rowToDelivery(row);
  }

  async attemptList({ deliveryId }: { deliveryId: number }): Promise<Attempt[]> {
    return (await this.#all("attemptList", [deliveryId])).map(rowToAttempt);
  }
}

function workOf(row: DispatchRow): DeliveryWork {
  const topic = String(row.t_name);
  return {
    delivery: rowToDelivery(row, "d_"),
    message: rowToMessage(row, "m_", topic),
    publisher: rowToPublisher(row, "p_", topic),
  };
}

function duplicatePublisher(p: { target: string; type: string }): ConflictError {
  return new ConflictError("duplicate_publisher", `the topic has a ${p.type} publisher for ${p.target} already`);
}

function sorted(ids: number[]): number[] {
  return ids.sort((a, b) => a - b);
}
