/**
 * Message search and delivery lists as SQL, for both drivers: which index drives a search, and the conditions it
 * applies. A page is newest first by (received_at, id), and every filter has an index that gives its matches in that
 * order from the cursor on, so a page reads about as many rows as it returns, never the whole table:
 *
 *   payload words   the words index (FTS5 / GIN), matches sorted: as many rows as match
 *   attribute       message_attributes (key, value, received_at, message_id)
 *   delivery state  deliveries_state (state, received_at, message_id, ...), for every state but delivered
 *   topic           messages_topic (topic_id, received_at, id)
 *   otherwise       messages_received (received_at, id)
 *
 * The first filter of that list that a search has drives it; the others are checked on the rows it reads (by
 * primary key or unique index). Delivered is nearly every delivery, so a search by it is driven by the messages
 * and checks the state of each (most match). A driver renders a query through a Dialect.
 */
import type { DeliveryListParams, MessageSearch } from "./dispatch-store.ts";

export type Dialect = {
  /** Table `name` as the driver's SQL names it (PostgreSQL: in the install's schema). */
  table(name: "messages" | "message_attributes" | "deliveries" | "topics"): string;
  /** The placeholder of parameter number `index` (1 for the first) of `type` (PostgreSQL: `$n::type`; SQLite: `?n`). */
  param(index: number, type: "int" | "text" | "time"): string;
  /**
   * The join that brings message `m` of id `id` beside the driving rows, by primary key only. PostgreSQL's generic
   * plans, made on empty tables, would otherwise be free to join the other way round (read messages by topic, then
   * look for their attributes or deliveries: every message of the topic for one page); a lateral subquery it cannot
   * flatten keeps the driving index outside and one lookup per row inside.
   */
  messageById(id: string): string;
  /**
   * What ends a residual EXISTS so that it stays a check of each row read (PostgreSQL: `OFFSET 0`, which keeps it
   * from becoming a join the planner could drive from the other side).
   */
  rowCheck: string;
  /** The from-clause of a search driven by the words index: `w`, the ids of messages that hold every word. */
  wordsSource(words: string[], param: (value: unknown, type: "text") => string): string;
};

export type BuiltQuery = { text: string; values: unknown[]; shape: string };

const MESSAGE_COLUMNS = "m.id, m.topic_id, m.payload, m.attributes, m.idempotency_key, m.received_at";

/** Only letters and digits reach SQL as words (callers split text so already; this keeps a mistake harmless). */
export function cleanWords(words: string[]): string[] {
  return words.map((word) => word.toLowerCase()).filter((word) => /^[\p{L}\p{N}]+$/u.test(word));
}

export function buildMessageSearch(search: MessageSearch, dialect: Dialect, values: unknown[]): BuiltQuery {
  const where: string[] = [];
  const p = (value: unknown, type: "int" | "text" | "time") => {
    values.push(value);
    return dialect.param(values.length, type);
  };
  const T = dialect.table;
  const words = cleanWords(search.words ?? []);
  const driver =
    words.length > 0
      ? "w"
      : search.attribute !== undefined
        ? "a"
        : search.state !== undefined && search.state !== "delivered"
          ? "s"
          : search.topicId !== undefined
            ? "t"
            : "m";
  const shape: string[] = [driver];
  let from: string;
  let at: string; // the driving source's received_at and message id columns, the page's order
  let id: string;
  if (driver === "w") {
    from = `${dialect.wordsSource(words, p)} ${dialect.messageById("w.id")}`;
    [at, id] = ["m.received_at", "m.id"];
  } else if (driver === "a") {
    from = `${T("message_attributes")} a ${dialect.messageById("a.message_id")}`;
    where.push(`a.key = ${p(search.attribute!.key, "text")}`, `a.value = ${p(search.attribute!.value, "text")}`);
    [at, id] = ["a.received_at", "a.message_id"];
  } else if (driver === "s") {
    from = `${T("deliveries")} d ${dialect.messageById("d.message_id")}`;
    // Spelled out beside the parameter: the partial index's own condition, so that a generic plan may use it.
    where.push(`d.state = ${p(search.state, "text")}`, "d.state <> 'delivered'");
    [at, id] = ["d.received_at", "d.message_id"];
  } else {
    from = `${T("messages")} m`;
    [at, id] = ["m.received_at", "m.id"];
  }
  if (search.topicId !== undefined) {
    shape.push("t");
    where.push(`m.topic_id = ${p(search.topicId, "int")}`);
  }
  if (search.from !== undefined) {
    shape.push("f");
    where.push(`${at} >= ${p(search.from, "time")}`);
  }
  if (search.to !== undefined) {
    shape.push("u");
    where.push(`${at} < ${p(search.to, "time")}`);
  }
  if (search.before !== undefined) {
    shape.push("c");
    where.push(`(${at}, ${id}) < (${p(search.before.receivedAt, "time")}, ${p(search.before.id, "int")})`);
  }
  if (driver === "w" && search.attribute !== undefined) {
    shape.push("a");
    const key = p(search.attribute.key, "text");
    const value = p(search.attribute.value, "text");
    where.push(
      `EXISTS (SELECT 1 FROM ${T("message_attributes")} a WHERE a.key = ${key} AND a.value = ${value} AND a.received_at = m.received_at AND a.message_id = m.id${dialect.rowCheck})`,
    );
  }
  if (driver !== "s" && search.state !== undefined) {
    shape.push("s");
    where.push(
      `EXISTS (SELECT 1 FROM ${T("deliveries")} d WHERE d.message_id = m.id AND d.state = ${p(search.state, "text")}${dialect.rowCheck})`,
    );
  }
  const filter = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
  const limit = p(search.limit, "int");
  const columns = `${MESSAGE_COLUMNS}, t.name AS topic_name`;
  if (driver === "s") {
    // A message with two deliveries in the state searched for is one result: distinct in the index's own order.
    const page = `SELECT DISTINCT ${at} AS received_at, ${id} AS message_id FROM ${from} ${filter}
      ORDER BY ${at} DESC, ${id} DESC LIMIT ${limit}`;
    const text = `SELECT ${columns} FROM (${page}) s ${dialect.messageById("s.message_id")}
      JOIN ${T("topics")} t ON t.id = m.topic_id ORDER BY s.received_at DESC, s.message_id DESC`;
    return { text, values, shape: shape.join("") };
  }
  const text = `SELECT ${columns} FROM ${from} JOIN ${T("topics")} t ON t.id = m.topic_id ${filter}
    ORDER BY ${at} DESC, ${id} DESC LIMIT ${limit}`;
  return { text, values, shape: shape.join("") };
}

export function buildDeliveryList(list: DeliveryListParams, dialect: Dialect, values: unknown[]): BuiltQuery {
  const p = (value: unknown, type: "int" | "text" | "time") => {
    values.push(value);
    return dialect.param(values.length, type);
  };
  const where = [`state = ${p(list.state, "text")}`, "state <> 'delivered'"];
  const shape: string[] = [];
  if (list.publisherId !== undefined) {
    shape.push("p");
    where.push(`publisher_id = ${p(list.publisherId, "int")}`);
  }
  if (list.before !== undefined) {
    shape.push("c");
    const { receivedAt, messageId, publisherId } = list.before;
    where.push(
      list.publisherId !== undefined
        ? `(received_at, message_id) < (${p(receivedAt, "time")}, ${p(messageId, "int")})`
        : `(received_at, message_id, publisher_id) < (${p(receivedAt, "time")}, ${p(messageId, "int")}, ${p(
            publisherId,
            "int",
          )})`,
    );
  }
  const text = `SELECT * FROM ${dialect.table("deliveries")} WHERE ${where.join(" AND ")}
    ORDER BY received_at DESC, message_id DESC, publisher_id DESC LIMIT ${p(list.limit, "int")}`;
  return { text, values, shape: shape.join("") || "all" };
}
