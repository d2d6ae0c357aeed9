/**
 * The mechanical half of the upgrade rule (docs/upgrades.md): a migration only adds, so that a node of the previous
 * release keeps working on the schema while and after a node of this release migrates it. This scans both drivers'
 * migration files for statements that take away or change what old code may rely on, and fails on each one unless
 * the file is a contract step: it carries `-- conveyor:contract <release>: <why>`, naming the release since which no
 * code uses what the file removes, and that release is older than this one (package.json's version), so that the
 * previous release, the only one a rolling upgrade runs beside this one, never meets the change.
 *
 * It reads SQL text, not a parser's tree: it knows the statements our migrations use. What it cannot judge (that a
 * replaced function still answers its old callers the same way) the file must state, with
 * `-- conveyor:compatible <why>`, and a reviewer must check.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";

const DRIVERS = ["postgres", "sqlite"] as const;
const CONTRACT = /^--\s*conveyor:contract\s+(\d+\.\d+\.\d+)\s*:\s*\S/m;
const COMPATIBLE = /^--\s*conveyor:compatible\s+\S/m;

/**
 * Migrations written before the rule, and what the check finds in them. They shipped before any release could
 * run beside another (0.1.0 is the first), and an applied migration is never edited, so they stay as they are; a
 * new finding in them (an edit) fails like any other.
 */
const BEFORE_THE_RULE: Record<string, string[]> = {
  "postgres/003_lean_writes": [
    "DROP INDEX {{SCHEMA}}.TASKS_STATE: drops an index",
    "DROP INDEX {{SCHEMA}}.TASKS_QUEUE_STATE: drops an index",
    "DROP INDEX {{SCHEMA}}.TASKS_FINISHED: drops an index",
    "DROP TABLE {{SCHEMA}}.EVENTS: drops a table",
    "CREATE INDEX TASKS_ENDED_BADLY ON {{SCHEMA}}.TASKS (STATE, I: an index on an existing table without IF NOT EXISTS (docs/upgrades.md)",
  ],
  "postgres/004_plans_by_id": [
    "CREATE OR REPLACE FUNCTION {{SCHEMA}}.EVENT_SEQUENCE(BATCH I: replaces a function or view old code calls: say why old callers are fine (-- conveyor:compatible ...)",
  ],
  "postgres/006_dashboard": [
    "CREATE INDEX TASKS_KEY ON {{SCHEMA}}.TASKS (KEY, ID) WHERE K: an index on an existing table without IF NOT EXISTS (docs/upgrades.md)",
  ],
  "postgres/008_sequencer_without_join": [
    "CREATE OR REPLACE FUNCTION {{SCHEMA}}.EVENT_SEQUENCE(BATCH I: replaces a function or view old code calls: say why old callers are fine (-- conveyor:compatible ...)",
  ],
  "sqlite/003_lean_writes": [
    "DROP TABLE EVENTS: drops a table",
    "DROP INDEX TASKS_STATE: drops an index",
    "DROP INDEX TASKS_QUEUE_STATE: drops an index",
    "DROP INDEX TASKS_FINISHED: drops an index",
    "CREATE INDEX TASKS_ENDED_BADLY ON TASKS (STATE, ID) WHERE ST: an index on an existing table without IF NOT EXISTS (docs/upgrades.md)",
  ],
  "sqlite/006_dashboard": [
    "CREATE INDEX TASKS_KEY ON TASKS (KEY, ID) WHERE KEY IS NOT N: an index on an existing table without IF NOT EXISTS (docs/upgrades.md)",
  ],
};

/** The statements of a migration, upper-cased and on one line, without comments and with string literals blanked. */
export function statements(sql: string): string[] {
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < sql.length; ) {
    const rest = sql.slice(i);
    const dollar = /^\$[A-Za-z_]*\$/.exec(rest);
    if (rest.startsWith("--")) {
      const end = sql.indexOf("\n", i);
      i = end === -1 ? sql.length : end;
    } else if (rest.startsWith("/*")) {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (rest.startsWith("'")) {
      const end = sql.indexOf("'", i + 1);
      current += "''";
      i = end === -1 ? sql.length : end + 1;
    } else if (dollar !== null) {
      // A body ($$ ... $$) is read too (a DO block's runs now), on the statement's line.
      const end = sql.indexOf(dollar[0], i + dollar[0].length);
      current += ` ${statements(sql.slice(i + dollar[0].length, end === -1 ? sql.length : end)).join(" ; ")} `;
      i = end === -1 ? sql.length : end + dollar[0].length;
    } else if (rest.startsWith(";")) {
      out.push(current);
      current = "";
      i++;
    } else {
      current += sql[i];
      i++;
    }
  }
  out.push(current);
  return out.map((s) => s.replace(/\s+/g, " ").trim().toUpperCase()).filter((s) => s !== "");
}

const NAME = String.raw`((?:\{\{SCHEMA\}\}\.)?"?[A-Z_][A-Z0-9_]*"?)`;
const bare = (name: string) => name.replace(/^\{\{SCHEMA\}\}\./, "").replaceAll('"', "");

/** What in `sql` may break a node of the previous release: "<statement's start>: <why>", one per finding. */
export function findings(sql: string): string[] {
  const all = statements(sql);
  // Tables and functions this very file creates: no old code knows them, so anything goes on them.
  const created = new Set<string>();
  for (const s of all) {
    const made = new RegExp(`^CREATE (?:TABLE|(?:UNIQUE )?INDEX|FUNCTION|VIEW)(?: IF NOT EXISTS)? ${NAME}`).exec(s);
    if (made !== null) created.add(bare(made[1]!));
  }
  const isNew = (name: string | undefined) => name !== undefined && created.has(bare(name));
  const out: string[] = [];
  for (const s of all) {
    const say = (why: string) => out.push(`${s.slice(0, 60)}: ${why}`);
    const table = new RegExp(`^ALTER TABLE(?: IF EXISTS)?(?: ONLY)? ${NAME}`).exec(s)?.[1];
    const drop = /\bDROP (TABLE|INDEX|FUNCTION|VIEW|MATERIALIZED VIEW|TYPE|SCHEMA|TRIGGER|SEQUENCE)\b/.exec(s);
    if (drop !== null) say(`drops ${/^[AEIOU]/.test(drop[1]!) ? "an" : "a"} ${drop[1]!.toLowerCase()}`);
    if (/\bDROP (COLUMN|CONSTRAINT|DEFAULT|NOT NULL)\b/.test(s) && !isNew(table))
      say(`drops a column, constraint, default or NOT NULL`);
    if (/\bRENAME\b/.test(s)) say("renames");
    if (/\bALTER (?:COLUMN )?\S+ (?:SET DATA )?TYPE\b/.test(s)) say("changes a column's type");
    if (/\bSET NOT NULL\b/.test(s) && !isNew(table)) say("makes an existing column NOT NULL");
    if (/\bADD (?:COLUMN )?(?:IF NOT EXISTS )?\S+ [^,]*\bNOT NULL\b/.test(s) && !/\bDEFAULT\b/.test(s))
      say("adds a NOT NULL column without a default (old inserts leave it out)");
    if (/\bADD (CONSTRAINT|UNIQUE|CHECK|PRIMARY KEY|FOREIGN KEY)\b/.test(s) && !isNew(table))
      say("adds a constraint old writes may break");
    const index = new RegExp(`^CREATE (UNIQUE )?INDEX (IF NOT EXISTS )?(?:${NAME} )?ON ${NAME}`).exec(s);
    if (index !== null && !isNew(index[4])) {
      if (index[1] !== undefined) say("a unique index on an existing table (old writes may break it)");
      else if (index[2] === undefined) say("an index on an existing table without IF NOT EXISTS (docs/upgrades.md)");
    }
    if (/^(TRUNCATE|DELETE FROM)\b/.test(s)) say("deletes rows");
    const replaced = new RegExp(`^CREATE OR REPLACE (?:FUNCTION|VIEW) ${NAME}`).exec(s)?.[1];
    if (replaced !== undefined && !isNew(replaced) && !COMPATIBLE.test(sql))
      say("replaces a function or view old code calls: say why old callers are fine (-- conveyor:compatible ...)");
  }
  return out;
}

/** Whether release `a` (x.y.z) is older than `b`. */
export function older(a: string, b: string): boolean {
  const [x, y] = [a, b].map((v) => v.split(".").map(Number));
  for (let i = 0; i < 3; i++) if (x![i] !== y![i]) return x![i]! < y![i]!;
  return false;
}

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

describe("migrations only add (docs/upgrades.md)", () => {
  for (const driver of DRIVERS) {
    const dir = new URL(`./${driver}/migrations/`, import.meta.url);
    for (const file of readdirSync(dir).filter((f) => /^\d+_.+\.sql$/.test(f))) {
      const name = `${driver}/${file.replace(/\.sql$/, "")}`;
      test(name, () => {
        const sql = readFileSync(new URL(file, dir), "utf8");
        const contract = CONTRACT.exec(sql);
        if (contract !== null) {
          assert.ok(
            older(contract[1]!, VERSION),
            `${name} is a contract step after ${contract[1]}, which must be an earlier release than this one (${VERSION})`,
          );
          return;
        }
        const found = findings(sql);
        if (name in BEFORE_THE_RULE) assert.deepEqual(found, BEFORE_THE_RULE[name], `${name} was edited`);
        else
          assert.deepEqual(
            found,
            [],
            `${name} takes away or changes what the previous release may use; make it additive, or a contract step ` +
              "a release later (-- conveyor:contract <release>: <why>; docs/upgrades.md)",
          );
      });
    }
  }
});

describe("the additive check itself", () => {
  test("finds what takes away or changes", () => {
    const sql = `
      ALTER TABLE {{schema}}.tasks DROP COLUMN tenant;
      DROP TABLE {{schema}}.old_things;
      DROP INDEX {{schema}}.tasks_queue;
      ALTER TABLE {{schema}}.tasks RENAME COLUMN run_at TO due_at;
      ALTER TABLE {{schema}}.tasks ALTER COLUMN priority TYPE bigint;
      ALTER TABLE {{schema}}.tasks ALTER COLUMN key SET NOT NULL;
      ALTER TABLE {{schema}}.tasks ADD COLUMN tenant text NOT NULL;
      ALTER TABLE {{schema}}.tasks ADD CONSTRAINT positive CHECK (priority >= 0);
      CREATE UNIQUE INDEX tasks_tenant ON {{schema}}.tasks (tenant);
      CREATE INDEX tasks_tenant_2 ON {{schema}}.tasks (tenant);
      DELETE FROM {{schema}}.nodes;
      CREATE OR REPLACE FUNCTION {{schema}}.event_sequence(batch integer) RETURNS void LANGUAGE sql AS $$ SELECT 1 $$;
    `;
    assert.deepEqual(
      findings(sql).map((f) => f.split(": ").slice(1).join(": ")),
      [
        "drops a column, constraint, default or NOT NULL",
        "drops a table",
        "drops an index",
        "renames",
        "changes a column's type",
        "makes an existing column NOT NULL",
        "adds a NOT NULL column without a default (old inserts leave it out)",
        "adds a constraint old writes may break",
        "a unique index on an existing table (old writes may break it)",
        "an index on an existing table without IF NOT EXISTS (docs/upgrades.md)",
        "deletes rows",
        "replaces a function or view old code calls: say why old callers are fine (-- conveyor:compatible ...)",
      ],
    );
  });

  test("lets through what only adds, and anything on what the file itself creates", () => {
    const sql = `
      -- a comment may say DROP TABLE or RENAME freely
      CREATE TABLE {{schema}}.things (id bigint PRIMARY KEY, name text NOT NULL);
      ALTER TABLE {{schema}}.things ADD CONSTRAINT named UNIQUE (name);
      ALTER TABLE {{schema}}.things ALTER COLUMN name SET NOT NULL;
      CREATE UNIQUE INDEX things_name ON {{schema}}.things (name);
      ALTER TABLE {{schema}}.tasks ADD COLUMN tenant text;
      ALTER TABLE {{schema}}.tasks ADD COLUMN weight integer NOT NULL DEFAULT 1;
      CREATE INDEX IF NOT EXISTS tasks_tenant ON {{schema}}.tasks (tenant) WHERE tenant IS NOT NULL;
      CREATE FUNCTION {{schema}}.f() RETURNS text LANGUAGE sql AS $$ SELECT 'DROP TABLE x; RENAME' $$;
      CREATE OR REPLACE FUNCTION {{schema}}.f() RETURNS text LANGUAGE sql AS $$ SELECT 'y' $$;
      INSERT INTO {{schema}}.log_meta (key, value) VALUES ('drop table', 'x') ON CONFLICT DO NOTHING;
      UPDATE {{schema}}.tasks SET tenant = 'default' WHERE tenant IS NULL;
    `;
    assert.deepEqual(findings(sql), []);
    assert.deepEqual(
      findings(
        "-- conveyor:compatible same signature, same answers\nCREATE OR REPLACE FUNCTION {{schema}}.g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
      ),
      [],
    );
  });

  test("a contract step names an earlier release", () => {
    assert.equal(
      CONTRACT.exec(
        "-- conveyor:contract 0.3.0: nothing reads tasks.tenant since 0.3.0\nALTER TABLE t DROP COLUMN c;",
      )?.[1],
      "0.3.0",
    );
    assert.equal(CONTRACT.exec("-- conveyor:contract soon: later\n"), null);
    assert.ok(older("0.3.0", "0.4.0") && older("0.9.9", "1.0.0") && older("1.2.3", "1.10.0"));
    assert.ok(!older("0.4.0", "0.4.0") && !older("0.5.0", "0.4.0"));
  });
});
