/**
 * The driver's SQL, read from queries/*.sql (one named statement per operation) with `{{schema}}` replaced by the
 * install's quoted schema and `{{task_columns}}` (`{{t.task_columns}}`) by the task columns the driver reads
 * (qualified by `t.`), and the name each runs under as a prepared statement.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "../../core/errors.ts";
import { readNamedStatements } from "../sql-file.ts";

/** What a schema name may be: a lower-case identifier PostgreSQL keeps as it is (at most 63 characters). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Settings of every connection the driver opens for its statements. Generic plans are forced: planning the
 * CTE-heavy statements on each call cost the server ~0.3 ms each (a sixth of the drain). But a connection makes
 * its generic plan of a statement once, at its first run, for the size the tables had then (often empty), so no
 * plan may depend on table size: sequential scans are off (on a small table the planner prefers one to an index,
 * and frozen it would read the whole table on every call), and statements reach the rows of tasks and the event
 * log through index conditions (`id = ANY(...)`), never through a join whose order the planner could turn round
 * (driven from the table's side, a claim read every queued task). plans.test.ts makes every plan on empty tables
 * and checks what it reads once they are big.
 *
 * JIT is off. A disabled sequential scan is not removed but costed at 10^10, so a plan that must still scan a
 * table (the one-row event_counter, in the sequencer) costs far over jit_above_cost, and PostgreSQL (jit = on by
 * default since 11) compiled such a statement on each run: ~300 ms for the sequencer's, which every read of the
 * event log runs first, for a statement that executes in well under a millisecond. These statements are short
 * and index-driven: JIT never pays off for them.
 */
export const SESSION_SETTINGS = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c jit=off";

/** The columns of tasks that rowToTask reads: every one but event_refs, which only eventList reads. */
export const TASK_COLUMNS =
  "id, queue, type, data, priority, state, attempt, max_attempts, stalls, run_at, key, progress, result, " +
  "error, errors, timeout_ms, backoff_ms, node, created_at, started_at, finished_at";

const TEMPLATES = new Map([
  ...readNamedStatements(new URL("./queries/task.sql", import.meta.url)),
  ...readNamedStatements(new URL("./queries/other.sql", import.meta.url)),
]);

/** The schema as a quoted identifier; throws ConfigError for a name outside SCHEMA_NAME. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new ConfigError(
      `PostgreSQL schema must match ${SCHEMA_NAME} (a lower-case identifier), got ${JSON.stringify(schema)}`,
    );
  }
  // SCHEMA_NAME admits no quote, so wrapping in double quotes is safe; quoting also admits reserved words.
  return `"${schema}"`;
}

/** Every named statement's text for one schema. */
export function loadStatements(schema: string): Map<string, string> {
  const quoted = quoteSchema(schema);
  const qualified = TASK_COLUMNS.split(", ")
    .map((column) => `t.${column}`)
    .join(", ");
  return new Map(
    [...TEMPLATES].map(([name, text]) => [
      name,
      text
        .replaceAll("{{schema}}", quoted)
        .replaceAll("{{task_columns}}", TASK_COLUMNS)
        .replaceAll("{{t.task_columns}}", qualified),
    ]),
  );
}

/** Replaces `{{schema}}` in SQL text (migrations, statements built at run time). */
export function withSchema(text: string, schema: string): string {
  return text.replaceAll("{{schema}}", quoteSchema(schema));
}

/**
 * The prefix of this schema's prepared-statement names (`conveyor.taskClaim`). PostgreSQL compares statement
 * names on their first 63 bytes only, so a long schema name is shortened, with a hash to keep it unique.
 */
export function statementPrefix(schema: string): string {
  if (schema.length <= 32) return schema;
  return `${schema.slice(0, 23)}_${createHash("sha1").update(schema).digest("hex").slice(0, 8)}`;
}
