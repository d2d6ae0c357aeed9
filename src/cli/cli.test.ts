/**
 * The command line as a user meets it: real processes, their output and exit codes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

function conveyor(args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("--help everywhere: the commands and each command's options", () => {
  const top = conveyor(["--help"]);
  assert.equal(top.code, 0);
  for (const command of ["start", "enqueue", "migrate"]) assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
  for (const [command, option] of [
    ["start", "--handlers"],
    ["enqueue", "--delay"],
    ["migrate", "--status"],
  ] as const) {
    const help = conveyor([command, "--help"]);
    assert.equal(help.code, 0, `${command} --help`);
    assert.match(help.stdout, new RegExp(option));
  }
});

test("migrate, migrate --status and enqueue on a SQLite file", () => {
  const database = join(mkdtempSync(join(tmpdir(), "conveyor-cli-")), "c.db");
  const migrated = conveyor(["migrate", "--database", database]);
  assert.equal(migrated.code, 0);
  assert.match(migrated.stdout, /applied {2}001_init/);
  assert.match(conveyor(["migrate", "--database", database]).stdout, /up to date/);
  assert.match(conveyor(["migrate", "--database", database, "--status"]).stdout, /applied {2}002_cluster/);
  const added = conveyor([
    "enqueue",
    "demo.sleep",
    '{"ms":10}',
    "--database",
    database,
    "--priority",
    "3",
    "--key",
    "k1",
  ]);
  assert.equal(added.code, 0, added.stderr);
  const task = JSON.parse(added.stdout);
  assert.equal(task.type, "demo.sleep");
  assert.equal(task.priority, 3);
  assert.equal(task.state, "queued");
  const again = JSON.parse(conveyor(["enqueue", "demo.sleep", "--database", database, "--key", "k1"]).stdout);
  assert.equal(again.id, task.id, "the key is held: the same task comes back");
});

test("bad input: a one-line error naming the flag or variable, a non-zero exit, nothing done", () => {
  const database = join(mkdtempSync(join(tmpdir(), "conveyor-cli-")), "c.db");
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["bogus"], {}, /unknown command "bogus"/],
    [["enqueue", "--database", database], {}, /missing <type>/],
    [["enqueue", "t", "{bad", "--database", database], {}, /data is not JSON/],
    [["enqueue", "bad type", "--database", database], {}, /validation_failed: type must match/],
    [["enqueue", "t", "--priority", "high", "--database", database], {}, /--priority must be an integer/],
    [["enqueue", "t", "--nope", "--database", database], {}, /Unknown option '--nope'/],
    [["start", "--port", "abc"], {}, /--port must be an integer from 0 to 65535, got "abc"/],
    [["start"], { PORT: "99999" }, /PORT must be an integer from 0 to 65535, got "99999"/],
    [["start", "--dead-after", "1"], {}, /--dead-after must be an integer from 2/],
  ];
  for (const [args, env, message] of cases) {
    const run = conveyor(args, env);
    assert.notEqual(run.code, 0, args.join(" "));
    assert.match(run.stderr, message, args.join(" "));
    assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
  }
  const status = conveyor(["migrate", "--database", database, "--status"]).stdout;
  assert.match(status, /pending {2}001_init/, "the bad commands did not even migrate the store");
  assert.match(
    conveyor(["enqueue", "t", "--database", database]).stdout,
    /"id": 1\b/,
    "no task was added by the bad enqueues",
  );
});
