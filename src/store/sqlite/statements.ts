/**
 * The driver's SQL, read from queries/*.sql (one named statement per operation), and the cache of statements
 * prepared from it: each is prepared once per store, at its first use, and kept for the store's life.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { readNamedStatements } from "../sql-file.ts";

const STATEMENTS = new Map([
  ...readNamedStatements(new URL("./queries/task.sql", import.meta.url)),
  ...readNamedStatements(new URL("./queries/other.sql", import.meta.url)),
]);

/** Statements whose rows come back as arrays, not objects: cheaper on the hot path, mapped by position. */
const ARRAY_ROWS = new Set(["taskClaim", "taskComplete"]);

/** The prepared statements of one database connection. */
export class PreparedStatements {
  readonly #db: DatabaseSync;
  readonly #prepared = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Named statement `name`, prepared at its first use. */
  get(name: string): StatementSync {
    let statement = this.#prepared.get(name);
    if (statement === undefined) {
      const text = STATEMENTS.get(name);
      if (text === undefined) throw new Error(`no SQL statement named ${name}`);
      statement = this.#prepare(name, text);
      this.#prepared.set(name, statement);
    }
    return statement;
  }

  /**
   * Statement `name` with its {{rows}} placeholder filled by `count` copies of `row` (one parenthesised parameter
   * list per task), prepared once per count.
   */
  withRows(name: string, row: string, count: number): StatementSync {
    const key = `${name}/${count}`;
    let statement = this.#prepared.get(key);
    if (statement === undefined) {
      statement = this.#prepare(name, STATEMENTS.get(name)!.replace("{{rows}}", new Array(count).fill(row).join(", ")));
      this.#prepared.set(key, statement);
    }
    return statement;
  }

  #prepare(name: string, text: string): StatementSync {
    const statement = this.#db.prepare(text);
    if (ARRAY_ROWS.has(name)) statement.setReturnArrays(true);
    return statement;
  }
}
