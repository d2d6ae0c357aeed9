/**
 * The SQLite driver's dispatch statements: queries/dispatch.sql's, prepared at their first use, and the searches
 * built at run time (dispatch-search.ts), prepared once per shape. Kept apart from the task statements
 * (statements.ts): dispatch has its own file of SQL and its own cache.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { readNamedStatements } from "../sql-file.ts";

const STATEMENTS = readNamedStatements(new URL("./queries/dispatch.sql", import.meta.url));

export class DispatchStatements {
  readonly #db: DatabaseSync;
  readonly #prepared = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Named statement `name` of queries/dispatch.sql. */
  get(name: string): StatementSync {
    let statement = this.#prepared.get(name);
    if (statement === undefined) {
      const text = STATEMENTS.get(name);
      if (text === undefined) throw new Error(`no dispatch SQL statement named ${name}`);
      statement = this.#db.prepare(text);
      this.#prepared.set(name, statement);
    }
    return statement;
  }

  /** A statement built at run time, prepared once per text. */
  built(text: string): StatementSync {
    let statement = this.#prepared.get(text);
    if (statement === undefined) {
      statement = this.#db.prepare(text);
      this.#prepared.set(text, statement);
    }
    return statement;
  }
}
