/**
 * Dispatch's PostgreSQL plans cannot go stale (plans.test.ts explains why it matters: generic plans, made once per
 * connection, often on empty tables). Every dispatch statement on the delivery path, and every shape of message
 * search and delivery list, is planned on empty tables; the tables then grow to tens of thousands of messages and
 * deliveries, and each statement runs again in a transaction rolled back afterwards while the server counts what it
 * read: no sequential scan of dispatch's tables, and no more rows than the statement has to touch.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { buildDeliveryList, buildMessageSearch, type Dialect } from "../dispatch-search.ts";
import type { DeliveryListParams, MessageSearch } from "../dispatch-store.ts";
import { PostgresStore } from "./postgres-store.ts";
import { SESSION_SETTINGS, withSchema } from "./statements.ts";
import { readNamedStatements } from "../sql-file.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const NOW = new Date("2030-01-01T00:00:00.000Z");
const LATER = new Date(NOW.getTime() + 3600_000);
const MESSAGES = 20_000;
const TABLES = ["messages", "deliveries", "message_attributes", "delivery_attempts", "publishers", "topics"];

type Case = { name: string; text?: string; args: () => unknown[]; maxRows: number };

const statements = readNamedStatements(new URL("./queries/dispatch.sql", import.meta.url));

if (await postgresSuite("postgres dispatch plans")) {
  describe("postgres dispatch plans made on empty tables stay index-driven when the tables grow", () => {
    const schema = freshSchema("dplans");
    const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize: 2 });
    const client = new pg.Client({ connectionString: postgresUrl(), options: SESSION_SETTINGS });
    const q = `"${schema}".`;
    const dialect: Dialect = {
      table: (name) => `${q}${name}`,
      param: (index, type) => `$${index}::${{ int: "bigint", text: "text", time: "timestamptz" }[type]}`,
      rowCheck: " OFFSET 0",
      messageById: (id) => `CROSS JOIN LATERAL (SELECT * FROM ${q}messages WHERE id = ${id} OFFSET 0) m`,
      wordsSource: (words, param) =>
        `(SELECT id FROM ${q}messages WHERE to_tsvector('simple', regexp_replace(payload::text, '[^[:alnum:]]+', ' ', 'g'))
          @@ to_tsquery('simple', ${param(words.join(" & "), "text")})) w`,
    };
    /** Ids known once the tables are filled (the first runs name ones that do not exist). */
    let ids = { topic: 1, publisher: 1, message: 1, delivery: 1, failedPublisher: 2 };

    const search = (name: string, params: MessageSearch): Case => {
      const built = buildMessageSearch(params, dialect, []);
      return { name: `search_${name}`, text: built.text, args: () => built.values, maxRows: 6 * params.limit };
    };
    const list = (name: string, params: DeliveryListParams): Case => {
      const built = buildDeliveryList(params, dialect, []);
      return { name: `list_${name}`, text: built.text, args: () => built.values, maxRows: 3 * params.limit };
    };
    const cursor = { receivedAt: new Date(NOW.getTime() + 10_000_000), id: 15_000 };

    const cases: Case[] = [
      { name: "deliveryWorkMany", args: () => [[ids.delivery, ids.delivery - 1, ids.delivery - 2]], maxRows: 15 },
      {
        name: "deliveryRecordMany",
        args: () => [
          JSON.stringify([
            [ids.delivery, 1, "scheduled", 1, LATER, 500, "x", 1, NOW, 5, "retry", "", {}, null, null],
            [ids.delivery - 100, 1, "delivered", 0, null, 200, null, 2, NOW, 5, "delivered", "", {}, null, null],
          ]),
          NOW,
        ],
        maxRows: 30,
      },
      { name: "deliverySettle", args: () => [ids.delivery, 1, "held", null, NOW, "why"], maxRows: 20 },
      { name: "deliveryPromoteDue", args: () => [NOW, 100], maxRows: 500 },
      { name: "deliveryNextDueAt", args: () => [], maxRows: 5 },
      { name: "deliveryReplay", args: () => [null, ids.failedPublisher, NOW, LATER, 100, NOW], maxRows: 600 },
      { name: "deliveryCancel", args: () => [ids.delivery, NOW], maxRows: 20 },
      { name: "deliveryRetryNow", args: () => [ids.delivery, NOW], maxRows: 20 },
      // Capped at 50 per state: six walks of deliveries_state, however many failed, waiting or held there are.
      { name: "deliveryCounts", args: () => [50], maxRows: 6 * 50 },
      { name: "deliveryCountsByPublisher", args: () => [50, [1, 2, 3]], maxRows: 3 * 6 * 50 },
      { name: "deliveriesRelease", args: () => [ids.publisher, NOW], maxRows: 300 },
      { name: "deliveriesDiscard", args: () => [ids.publisher, NOW], maxRows: 1000 },
      { name: "deliveryById", args: () => [ids.delivery], maxRows: 5 },
      { name: "deliveriesOfMessage", args: () => [ids.message], maxRows: 10 },
      { name: "messageById", args: () => [ids.message], maxRows: 5 },
      { name: "messagesByKeys", args: () => [["k1", "k2"]], maxRows: 10 },
      { name: "attemptList", args: () => [ids.delivery], maxRows: 20 },
      {
        name: "publishersOfTopicList",
        text: withSchema(statements.get("publisherList")!, schema),
        args: () => [ids.topic, false],
        maxRows: 10,
      },
      search("all", { limit: 50 }),
      search("all_cursor", { limit: 50, before: cursor }),
      search("topic", { topicId: 2, limit: 50 }),
      search("time", { from: NOW, to: new Date(NOW.getTime() + 60_000), limit: 50 }),
      search("attribute", { attribute: { key: "kind", value: "rare" }, limit: 50 }),
      search("attribute_topic", { attribute: { key: "kind", value: "common" }, topicId: 1, limit: 50, before: cursor }),
      search("words", { words: ["needle"], limit: 50 }),
      search("words_everything", {
        words: ["needle"],
        attribute: { key: "kind", value: "common" },
        state: "failed",
        topicId: 2,
        limit: 50,
      }),
      search("time_topic_state", { state: "delivered", topicId: 1, from: NOW, to: LATER, limit: 50 }),
      search("state", { state: "failed", limit: 50 }),
      search("state_topic", { state: "failed", topicId: 1, limit: 50, before: cursor }),
      search("delivered", { state: "delivered", limit: 50 }),
      list("failed", { state: "failed", limit: 50 }),
      list("failed_publisher", { state: "failed", publisherId: 2, limit: 50 }),
      list("scheduled_cursor", {
        state: "scheduled",
        limit: 50,
        before: { receivedAt: cursor.receivedAt, messageId: 15_000, publisherId: 9 },
      }),
    ];

    const literal = (value: unknown): string => {
      if (value === null) return "NULL";
      if (typeof value === "number" || typeof value === "boolean") return String(value);
      if (value instanceof Date) return client.escapeLiteral(value.toISOString());
      if (Array.isArray(value)) return client.escapeLiteral(`{${value.map((v) => JSON.stringify(v)).join(",")}}`);
      return client.escapeLiteral(String(value));
    };
    const execute = (name: string, args: unknown[]) =>
      client.query(`EXECUTE ${name}${args.length === 0 ? "" : `(${args.map(literal).join(", ")})`}`);

    async function readsSoFar(): Promise<Map<string, { seqScans: number; rows: number }>> {
      const { rows } = await client.query(
        `SELECT relname, seq_scan, seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables
         WHERE schemaname = $1 AND relname = ANY($2)`,
        [schema, TABLES],
      );
      return new Map(
        rows.map((r) => [
          r.relname,
          { seqScans: Number(r.seq_scan), rows: Number(r.seq_tup_read) + Number(r.idx_tup_fetch) },
        ]),
      );
    }

    async function readsOf(work: () => Promise<unknown>) {
      await client.query("BEGIN");
      try {
        const before = await readsSoFar();
        await work();
        const reads: Record<string, { seqScans: number; rows: number }> = {};
        for (const [table, now] of await readsSoFar()) {
          const was = before.get(table) ?? { seqScans: 0, rows: 0 };
          reads[table] = { seqScans: now.seqScans - was.seqScans, rows: now.rows - was.rows };
        }
        return reads;
      } finally {
        await client.query("ROLLBACK");
      }
    }

    before(async () => {
      await store.migrate();
      await client.connect();
      for (const table of TABLES) await client.query(`ALTER TABLE ${q}${table} SET (autovacuum_enabled = false)`);
      for (const { name, text } of cases)
        await client.query(`PREPARE ${name} AS ${text ?? withSchema(statements.get(name)!, schema)}`);
      for (const { name, args } of cases) await readsOf(() => execute(name, args()));
      await fill();
    });

    /** Two topics, three publishers, MESSAGES messages a second apart: most delivered, some failed, waiting or held. */
    async function fill(): Promise<void> {
      const run = (sql: string, values: unknown[] = []) => client.query(withSchema(sql, schema), values);
      await run(
        `INSERT INTO {{schema}}.topics (name, origin_host, created_at, updated_at) VALUES
        ('one', 'h', $1, $1), ('two', 'h', $1, $1)`,
        [NOW],
      );
      await run(
        `INSERT INTO {{schema}}.publishers (topic_id, target, type, active, seconds_timeout, seconds_retry,
        retry_mode, created_at, updated_at) VALUES
        (1, 'http://a/', 'http', true, 5, 30, 'schedule', $1, $1), (1, 'http://b/', 'http', true, 5, 30, 'schedule', $1, $1),
        (2, 'http://c/', 'http', true, 5, 30, 'schedule', $1, $1)`,
        [NOW],
      );
      await run(
        `INSERT INTO {{schema}}.messages (topic_id, payload, attributes, received_at)
        SELECT 1 + (i % 2), json_build_object('n', i, 'text', CASE WHEN i % 1000 = 7 THEN 'needle' ELSE 'hay' END),
          json_build_object('kind', CASE WHEN i % 1000 = 3 THEN 'rare' ELSE 'common' END), $1::timestamptz + i * interval '1 second'
        FROM generate_series(1, ${MESSAGES}) i`,
        [NOW],
      );
      await run(`INSERT INTO {{schema}}.message_attributes (key, value, received_at, message_id)
        SELECT 'kind', attributes ->> 'kind', received_at, id FROM {{schema}}.messages`);
      await run(
        `INSERT INTO {{schema}}.deliveries (message_id, publisher_id, state, next_attempt_at, received_at,
        created_at, updated_at)
        SELECT m.id, CASE WHEN m.topic_id = 2 THEN 3 ELSE 1 + (m.id % 2) END,
          CASE WHEN m.id % 100 = 1 THEN 'failed' WHEN m.id % 100 = 2 THEN 'scheduled' WHEN m.id % 100 = 3 THEN 'held'
               ELSE 'delivered' END,
          CASE WHEN m.id % 100 = 2 THEN $1::timestamptz + m.id * interval '1 second' END, m.received_at, $1, $1
        FROM {{schema}}.messages m`,
        [NOW],
      );
      await run(
        `INSERT INTO {{schema}}.delivery_attempts (delivery_id, attempt, at, duration_ms, outcome, request)
        SELECT id, 1, $1, 5, 'delivered', '{}' FROM {{schema}}.deliveries`,
        [NOW],
      );
      const { rows } = await run(
        `SELECT id, message_id FROM {{schema}}.deliveries WHERE state = 'scheduled' ORDER BY id DESC LIMIT 1`,
      );
      ids = {
        topic: 1,
        publisher: 1,
        message: Number(rows[0].message_id),
        delivery: Number(rows[0].id),
        failedPublisher: 2,
      };
    }

    after(async () => {
      await client.end().catch(() => {});
      await store.close();
      await dropSchema(schema);
    });

    for (const { name, args, maxRows } of cases) {
      test(`${name} reads at most ${maxRows} rows of dispatch's tables`, async () => {
        const reads = await readsOf(() => execute(name, args()));
        for (const [table, { seqScans, rows }] of Object.entries(reads)) {
          assert.equal(seqScans, 0, `${name} scanned ${table} sequentially`);
          assert.ok(rows <= maxRows, `${name} read ${rows} rows of ${table} (at most ${maxRows} expected)`);
        }
      });
    }
  });
}
