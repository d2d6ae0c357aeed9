/**
 * The engine's table of items, the seed's `todo_items`, kept by the database driver (Conveyor has no table for an
 * application's rows), beside the position in Conveyor's event log that it reflects. The log is the record of every
 * change (engine.ts); this table is its projection, so that a page or an `all` answer is one read.
 *
 *   todo_items       id (UUID), title (at most 255 characters, as the seed's varchar), done, seq (creation order),
 *                    inserted_at, updated_at
 *   todo_projection  one row: the log's epoch, `scanned` (the last log offset read) and `applied` (the offset of
 *                    the last todo event applied, the `previous` of the next one)
 *   todo_changes     the change ids applied lately (a worker sends a change again when it cannot tell whether it
 *                    was taken), with what they gave, so that a change is applied once
 *
 * SQLite: a file of its own beside Conveyor's (a write lock held on Conveyor's file across a publish would wait on
 * itself); one connection writes (BEGIN IMMEDIATE, one writer across processes), another reads (WAL). PostgreSQL:
 * Conveyor's schema, a pool; writers take the projection row FOR UPDATE, so engines on one database write one at
 * a time, each after reading the changes the others made.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import type { Item, TodoEvent } from "./todo.ts";

export type Projection = { epoch: string | null; scanned: number; applied: number };

export type Snapshot = { items: Item[]; projection: Projection };

export interface ItemsTx {
  projection(): Promise<Projection>;
  setProjection(projection: Projection): Promise<void>;
  get(id: string): Promise<Item | null>;
  apply(event: TodoEvent, at: Date): Promise<void>;
  changeOutcome(id: string): Promise<string | null>;
  recordChange(id: string, outcome: string, at: Date): Promise<void>;
  pruneChanges(before: Date): Promise<void>;
}

export interface ItemsTable {
  readonly description: string;
  migrate(): Promise<void>;
  /** Runs `work` in a transaction that holds the write lock: one writer at a time, across processes. */
  locked<T>(work: (tx: ItemsTx) => Promise<T>): Promise<T>;
  /** The items in creation order and the projection they go with, read at one instant. */
  snapshot(): Promise<Snapshot>;
  close(): Promise<void>;
}

/** One at a time within this process (a connection runs one transaction at a time). */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** The file that holds the items beside Conveyor's SQLite file: `x.db` -> `x-items.db`. */
export function itemsFileFor(conveyorFile: string): string {
  return conveyorFile.endsWith(".db") ? `${conveyorFile.slice(0, -3)}-items.db` : `${conveyorFile}-items`;
}

// ---- SQLite ---------------------------------------------------------------------------------------------

const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS todo_items (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL,
  inserted_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS todo_items_seq ON todo_items (seq);
CREATE TABLE IF NOT EXISTS todo_projection (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  epoch TEXT,
  scanned INTEGER NOT NULL,
  applied INTEGER NOT NULL
);
INSERT OR IGNORE INTO todo_projection (id, epoch, scanned, applied) VALUES (1, NULL, 0, 0);
CREATE TABLE IF NOT EXISTS todo_changes (id TEXT PRIMARY KEY, outcome TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS todo_changes_at ON todo_changes (at);
`;

type SqliteRow = Record<string, string | number | bigint | null | Uint8Array>;

function itemOf(row: SqliteRow): Item {
  return { id: String(row.id), title: String(row.title), done: Number(row.done) === 1 };
}

function projectionOf(row: SqliteRow | undefined): Projection {
  return {
    epoch: row?.epoch === null || row?.epoch === undefined ? null : String(row.epoch),
    scanned: Number(row?.scanned ?? 0),
    applied: Number(row?.applied ?? 0),
  };
}

export class SqliteItems implements ItemsTable {
  readonly description: string;
  readonly #path: string;
  #writer: DatabaseSync | null = null;
  #reader: DatabaseSync | null = null;
  readonly #mutex = new Mutex();

  constructor(path: string) {
    this.#path = path;
    this.description = `SQLite ${path}`;
  }

  #open(): { writer: DatabaseSync; reader: DatabaseSync } {
    if (this.#writer === null || this.#reader === null) {
      mkdirSync(dirname(this.#path), { recursive: true });
      const writer = new DatabaseSync(this.#path);
      writer.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;");
      const reader = new DatabaseSync(this.#path);
      reader.exec("PRAGMA busy_timeout = 10000;");
      this.#writer = writer;
      this.#reader = reader;
    }
    return { writer: this.#writer, reader: this.#reader };
  }

  async migrate(): Promise<void> {
    await this.#mutex.run(async () => this.#open().writer.exec(SQLITE_SCHEMA));
  }

  locked<T>(work: (tx: ItemsTx) => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      const db = this.#open().writer;
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = await work(sqliteTx(db));
        db.exec("COMMIT");
        return result;
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
    });
  }

  async snapshot(): Promise<Snapshot> {
    const db = this.#open().reader;
    db.exec("BEGIN");
    try {
      const items = db.prepare("SELECT id, title, done FROM todo_items ORDER BY seq").all() as SqliteRow[];
      const projection = db.prepare("SELECT epoch, scanned, applied FROM todo_projection WHERE id = 1").get() as
        | SqliteRow
        | undefined;
      return { items: items.map(itemOf), projection: projectionOf(projection) };
    } finally {
      db.exec("COMMIT");
    }
  }

  async close(): Promise<void> {
    await this.#mutex.run(async () => {
      this.#writer?.close();
      this.#reader?.close();
      this.#writer = null;
      this.#reader = null;
    });
  }
}

function sqliteTx(db: DatabaseSync): ItemsTx {
  return {
    async projection() {
      return projectionOf(
        db.prepare("SELECT epoch, scanned, applied FROM todo_projection WHERE id = 1").get() as SqliteRow | undefined,
      );
    },
    async setProjection({ epoch, scanned, applied }) {
      db.prepare("UPDATE todo_projection SET epoch = ?, scanned = ?, applied = ? WHERE id = 1").run(
        epoch,
        scanned,
        applied,
      );
    },
    async get(id) {
      const row = db.prepare("SELECT id, title, done FROM todo_items WHERE id = ?").get(id) as SqliteRow | undefined;
      return row === undefined ? null : itemOf(row);
    },
    async apply(event, at) {
      const now = at.getTime();
      if (event.type === "delete") {
        db.prepare("DELETE FROM todo_items WHERE id = ?").run(event.data.id);
      } else if (event.type === "update") {
        db.prepare("UPDATE todo_items SET title = ?, done = ?, updated_at = ? WHERE id = ?").run(
          event.data.title,
          event.data.done ? 1 : 0,
          now,
          event.data.id,
        );
      } else {
        db.prepare(
          `INSERT INTO todo_items (id, title, done, seq, inserted_at, updated_at)
           VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM todo_items), ?, ?)
           ON CONFLICT (id) DO UPDATE SET title = excluded.title, done = excluded.done, updated_at = excluded.updated_at`,
        ).run(event.data.id, event.data.title, event.data.done ? 1 : 0, now, now);
      }
    },
    async changeOutcome(id) {
      const row = db.prepare("SELECT outcome FROM todo_changes WHERE id = ?").get(id) as SqliteRow | undefined;
      return row === undefined ? null : String(row.outcome);
    },
    async recordChange(id, outcome, at) {
      db.prepare("INSERT OR REPLACE INTO todo_changes (id, outcome, at) VALUES (?, ?, ?)").run(
        id,
        outcome,
        at.getTime(),
      );
    },
    async pruneChanges(before) {
      db.prepare("DELETE FROM todo_changes WHERE at < ?").run(before.getTime());
    },
  };
}

// ---- PostgreSQL -----------------------------------------------------------------------------------------

function postgresSchema(schema: string): string {
  const s = `"${schema}"`;
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.todo_items (
  id uuid PRIMARY KEY,
  title varchar(255) NOT NULL,
  done boolean NOT NULL DEFAULT false,
  seq bigint NOT NULL,
  inserted_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS todo_items_seq ON ${s}.todo_items (seq);
CREATE TABLE IF NOT EXISTS ${s}.todo_projection (
  id integer PRIMARY KEY CHECK (id = 1),
  epoch text,
  scanned bigint NOT NULL,
  applied bigint NOT NULL
);
INSERT INTO ${s}.todo_projection (id, epoch, scanned, applied) VALUES (1, NULL, 0, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ${s}.todo_changes (id text PRIMARY KEY, outcome text NOT NULL, at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS todo_changes_at ON ${s}.todo_changes (at);
`;
}

type PgRow = Record<string, unknown>;

function pgProjection(row: PgRow | undefined): Projection {
  return {
    epoch: typeof row?.epoch === "string" ? row.epoch : null,
    scanned: Number(row?.scanned ?? 0),
    applied: Number(row?.applied ?? 0),
  };
}

function pgItem(row: PgRow): Item {
  return { id: String(row.id), title: String(row.title), done: row.done === true };
}

export class PostgresItems implements ItemsTable {
  readonly description: string;
  readonly #pool: pg.Pool;
  readonly #s: string;
  readonly #mutex = new Mutex();

  constructor(connectionString: string, schema: string) {
    this.#pool = new pg.Pool({ connectionString, max: 4, application_name: "ztd-engine" });
    this.#pool.on("error", () => {});
    this.#s = `"${schema}"`;
    this.description = `PostgreSQL schema ${schema}`;
  }

  async migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      // Engines starting together would race on CREATE ... IF NOT EXISTS (a unique violation in pg_type).
      await client.query("SELECT pg_advisory_xact_lock(hashtext('ztd.todo.migrate'))");
      await client.query(postgresSchema(this.#s.slice(1, -1)));
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  locked<T>(work: (tx: ItemsTx) => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      const client = await this.#pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN");
        await client.query(`SELECT 1 FROM ${this.#s}.todo_projection WHERE id = 1 FOR UPDATE`);
        const result = await work(this.#tx(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => (broken = true));
        throw error;
      } finally {
        client.release(broken);
      }
    });
  }

  #tx(client: pg.PoolClient): ItemsTx {
    const s = this.#s;
    return {
      async projection() {
        const { rows } = await client.query(`SELECT epoch, scanned, applied FROM ${s}.todo_projection WHERE id = 1`);
        return pgProjection(rows[0]);
      },
      async setProjection({ epoch, scanned, applied }) {
        await client.query(`UPDATE ${s}.todo_projection SET epoch = $1, scanned = $2, applied = $3 WHERE id = 1`, [
          epoch,
          scanned,
          applied,
        ]);
      },
      async get(id) {
        const { rows } = await client.query(`SELECT id, title, done FROM ${s}.todo_items WHERE id = $1`, [id]);
        return rows[0] === undefined ? null : pgItem(rows[0]);
      },
      async apply(event, at) {
        if (event.type === "delete") {
          await client.query(`DELETE FROM ${s}.todo_items WHERE id = $1`, [event.data.id]);
        } else if (event.type === "update") {
          await client.query(`UPDATE ${s}.todo_items SET title = $2, done = $3, updated_at = $4 WHERE id = $1`, [
            event.data.id,
            event.data.title,
            event.data.done,
            at,
          ]);
        } else {
          await client.query(
            `INSERT INTO ${s}.todo_items (id, title, done, seq, inserted_at, updated_at)
             VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM ${s}.todo_items), $4, $4)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, done = excluded.done, updated_at = excluded.updated_at`,
            [event.data.id, event.data.title, event.data.done, at],
          );
        }
      },
      async changeOutcome(id) {
        const { rows } = await client.query(`SELECT outcome FROM ${s}.todo_changes WHERE id = $1`, [id]);
        return rows[0] === undefined ? null : String(rows[0].outcome);
      },
      async recordChange(id, outcome, at) {
        await client.query(
          `INSERT INTO ${s}.todo_changes (id, outcome, at) VALUES ($1, $2, $3)
           ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, at = excluded.at`,
          [id, outcome, at],
        );
      },
      async pruneChanges(before) {
        await client.query(`DELETE FROM ${s}.todo_changes WHERE at < $1`, [before]);
      },
    };
  }

  async snapshot(): Promise<Snapshot> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const items = await client.query(`SELECT id, title, done FROM ${this.#s}.todo_items ORDER BY seq`);
      const projection = await client.query(
        `SELECT epoch, scanned, applied FROM ${this.#s}.todo_projection WHERE id = 1`,
      );
      await client.query("COMMIT");
      return { items: items.rows.map(pgItem), projection: pgProjection(projection.rows[0]) };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
