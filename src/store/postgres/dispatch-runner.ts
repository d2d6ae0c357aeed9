/**
 * How the PostgreSQL DispatchStore reaches the server: queries/dispatch.sql's statements by name (prepared once per
 * connection, as `<prefix>.d.<name>`), statements built at run time (one prepared statement per shape), the task
 * statements of the PostgresStore (to insert delivery tasks and append events in dispatch's transactions), and
 * transactions on the store's pool.
 */
import type pg from "pg";
import { readNamedStatements } from "../sql-file.ts";
import type { Row } from "./row-mapping.ts";
import { inTransaction } from "./transaction.ts";
import { quoteSchema, withSchema } from "./statements.ts";

/** A pool, or one client inside a transaction. */
export type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

export type PostgresDispatchDeps = {
  pool: pg.Pool;
  schema: string;
  /** The store's prepared-statement prefix (statements.ts statementPrefix). */
  prefix: string;
  /** Runs one of the store's own statements (task.sql, other.sql) on `client`. */
  runTask: (name: string, values: unknown[], client: Queryable) => Promise<pg.QueryResult<Row>>;
};

const TEMPLATES = readNamedStatements(new URL("./queries/dispatch.sql", import.meta.url));

export class DispatchRunner {
  readonly #deps: PostgresDispatchDeps;
  readonly #statements: Map<string, string>;
  /** `"schema".` : what built statements put before a table's name. */
  readonly qualifier: string;

  constructor(deps: PostgresDispatchDeps) {
    this.#deps = deps;
    this.#statements = new Map([...TEMPLATES].map(([name, text]) => [name, withSchema(text, deps.schema)]));
    this.qualifier = `${quoteSchema(deps.schema)}.`;
  }

  /** Runs dispatch statement `name` with `values`, on the pool or on `client`. */
  run(name: string, values: unknown[], client: Queryable = this.#deps.pool): Promise<pg.QueryResult<Row>> {
    const text = this.#statements.get(name);
    if (text === undefined) throw new Error(`no dispatch SQL statement named ${name}`);
    return client.query<Row>({ name: `${this.#deps.prefix}.d.${name}`, text, values });
  }

  /** Runs one of the store's own statements (eventAppend, the task inserts) on `client`. */
  runTask(name: string, values: unknown[], client: Queryable): Promise<pg.QueryResult<Row>> {
    return this.#deps.runTask(name, values, client);
  }

  /** Runs a statement built at run time, prepared under `<prefix>.d.<shape>` (one text per shape). */
  async built(shape: string, text: string, values: unknown[]): Promise<Row[]> {
    return (await this.#deps.pool.query<Row>({ name: `${this.#deps.prefix}.d.${shape}`, text, values })).rows;
  }

  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#deps.pool, work);
  }
}
