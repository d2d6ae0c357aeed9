/**
 * The driver's SQL, read from queries/*.sql (one named statement per operation) with `{{schema}}` replaced by the
 * install's quoted schema, and the name each runs under as a prepared statement.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "../../core/errors.ts";
import { readNamedStatements } from "../sql-file.ts";

/** What a schema name may be: a lower-case identifier PostgreSQL keeps as it is (at most 63 characters). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const TEMPLATES = new Map([
  ...readNamedStatements(new URL("./queries/task.sql", import.meta.url)),
  ...readNamedStatements(new URL("./queries/other.sql", import.meta.url)),
]);

/** The schema as a quoted identifier; throws ConfigError for a name outside SCHEMA_NAME. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new ConfigError(`PostgreSQL schema must match ${SCHEMA_NAME} (a lower-case identifier), got ${JSON.stringify(schema)}`);
  }
  // SCHEMA_NAME admits no quote, so wrapping in double quotes is safe; quoting also admits reserved words.
  return `"${schema}"`;
}

/** Every named statement's text for one schema. */
export function loadStatements(schema: string): Map<string, string> {
  const quoted = quoteSchema(schema);
  return new Map([...TEMPLATES].map(([name, text]) => [name, text.replaceAll("{{schema}}", quoted)]));
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
