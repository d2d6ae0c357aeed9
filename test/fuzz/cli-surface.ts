/**
 * The command line under fuzzing, in process: `main(argv)` (src/cli/main.ts) with generated flags and values, and
 * `startConfig` with generated environment variables. Properties: the exit code is 0, 1 or 2; a mistake is one
 * clear line on stderr naming the flag or variable at fault, never a stack trace (main never throws); --help prints
 * the usage; a valid `enqueue` prints the task it added.
 *
 * Nothing starts or dials out: `start` always gets an invalid `--port` last, so it stops at its checks; `enqueue` and
 * `migrate` work on a temporary SQLite file given by CONVEYOR_DATABASE (generated arguments never name another).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { ENVIRONMENT } from "../../src/core/config.ts";
import { ConveyorError } from "../../src/core/errors.ts";
import { main } from "../../src/cli/main.ts";
import { startConfig } from "../../src/cli/start.ts";
import type { FuzzProperty } from "./harness.ts";

const text = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "0",
    "1",
    "-1",
    "1e3",
    "0x10",
    "1.5",
    "9007199254740993",
    "true",
    "false",
    "yes",
    "info",
    "x",
  ),
  fc.constantFrom("99999999999999999999", " 5 ", "5\n", "\u0000", "--", "-", "=", "ü", "x".repeat(5000)),
  fc.string({ maxLength: 12 }),
  fc.integer().map(String),
);

const FLAGS = [
  "--help",
  "-h",
  "--queue",
  "--priority",
  "--delay",
  "--key",
  "--max-attempts",
  "--wait",
  "--status",
  "--port",
  "--host",
  "--concurrency",
  "--token",
  "--read-token",
  "--live-secret",
  "--name",
  "--heartbeat-ms",
  "--dead-after",
  "--grace-ms",
  "--allow-fault-injection",
  "--amqp",
  "--unknown",
  "-x",
  "--",
  "---",
  "--priority=5",
  "--queue=",
];

/** `--wait N` would hold a case N seconds for a task nobody runs: only values refused at once, or 0. */
const waitValue = fc.constantFrom("0", "-1", "x", "1.5", "100000000", "");

const argument: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(fc.constantFrom(...FLAGS.filter((f) => f !== "--wait")), text).map(([flag, value]) => [flag, value]),
  fc.tuple(fc.constant("--wait"), waitValue).map(([flag, value]) => [flag, value]),
  fc.constantFrom(...FLAGS.filter((f) => f !== "--wait")).map((flag) => [flag]),
  text.map((positional) => [positional]),
  fc.jsonValue({ maxDepth: 2 }).map((value) => [JSON.stringify(value)]),
);

const argv = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("enqueue", "start", "migrate") },
      { weight: 1, arbitrary: fc.constantFrom("help", "--help", "-h", "", "stop", "START", "--version") },
    ),
    fc.constantFrom("echo", "mail.send", "", "--queue"),
    fc.array(argument, { maxLength: 4 }).map((parts) => parts.flat()),
  )
  .map(([command, type, rest]) => (command === "enqueue" ? [command, type, ...rest] : [command, ...rest]));

let keys = 0;

/** `enqueue` as its help describes it, so that valid runs get as far as the store. */
const validEnqueue = fc
  .record(
    {
      // A positional that starts with "-" is read as a flag (parseArgs), as in every command line.
      data: fc
        .jsonValue({ maxDepth: 2 })
        .map((value) => JSON.stringify(value))
        .filter((text) => !text.startsWith("-"))
        .map((text) => [text]),
      queue: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/).map((q) => ["--queue", q]),
      // `--priority -1` is refused as ambiguous (parseArgs, with a hint to write `--priority=-1`).
      priority: fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => [`--priority=${n}`]),
      delay: fc.nat({ max: 10_000_000 }).map((n) => ["--delay", String(n)]),
      // Unique: a second task with an active task's key is that task (its queue, its data).
      key: fc.string({ minLength: 1, maxLength: 20 }).map((k) => [`--key=${k}#${++keys}`]),
      attempts: fc.integer({ min: 1, max: 1000 }).map((n) => ["--max-attempts", String(n)]),
    },
    { requiredKeys: [] },
  )
  .chain((parts) => fc.shuffledSubarray(Object.values(parts), { minLength: Object.keys(parts).length }))
  .map((parts) => ["enqueue", "echo", ...parts.flat()]);

type Run = { code: number; stdout: string; stderr: string; threw?: unknown };

/** Runs `main` with stdout and stderr captured (console.log and .error write through them). */
async function run(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write;
  const writeErr = process.stderr.write;
  // Text is the command's; bytes are the test runner's own messages (it reports over this process's stdout).
  const capture =
    (into: string[], write: typeof process.stdout.write, stream: NodeJS.WriteStream) =>
    (chunk: string | Uint8Array, ...rest: any[]): boolean =>
      typeof chunk === "string" ? into.push(chunk) > 0 : write.call(stream, chunk, ...rest);
  process.stdout.write = capture(out, writeOut, process.stdout) as typeof process.stdout.write;
  process.stderr.write = capture(err, writeErr, process.stderr) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } catch (threw) {
    return { code: -1, stdout: out.join(""), stderr: err.join(""), threw };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
}

export function cliProperties(): { properties: FuzzProperty[]; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-fuzz-cli-"));
  const database = join(dir, "cli.db");
  const saved = { database: process.env.CONVEYOR_DATABASE, schema: process.env.CONVEYOR_SCHEMA };

  const commandLine = fc.asyncProperty(argv, async (args) => {
    const safe = args[0] === "start" ? [...args, "--port", "not-a-port"] : args;
    process.env.CONVEYOR_DATABASE = database;
    delete process.env.CONVEYOR_SCHEMA;
    const result = await run(safe);
    const what = `conveyor ${JSON.stringify(safe).slice(0, 300)} → ${result.code}\nstdout: ${result.stdout.slice(0, 300)}\nstderr: ${result.stderr.slice(0, 500)}`;
    assert.equal(result.threw, undefined, `main threw (a stack trace for the user): ${String(result.threw)}\n${what}`);
    assert.ok([0, 1, 2].includes(result.code), `exit code ${result.code}: ${what}`);
    assert.doesNotMatch(result.stderr, /\n\s+at /, `a stack trace on stderr: ${what}`);
    if (result.code !== 0) {
      assert.ok(
        result.stderr.startsWith("conveyor") || result.stdout.startsWith("Usage"),
        `an error that does not say so: ${what}`,
      );
    }
    const help = args.some((a) => a === "--help" || a === "-h");
    if (help && result.code === 0) assert.match(result.stdout, /^Usage: /, what);
    if (args[0] === "start" && !help)
      assert.notEqual(result.code, 0, `start did not stop at --port not-a-port: ${what}`);
    if (result.code === 0 && args[0] === "enqueue" && !help) {
      const task = JSON.parse(result.stdout);
      if (!args[1]!.startsWith("-")) assert.equal(task.type, args[1], what);
    }
  });

  const validRun = fc.asyncProperty(validEnqueue, async (args) => {
    process.env.CONVEYOR_DATABASE = database;
    delete process.env.CONVEYOR_SCHEMA;
    const result = await run(args);
    const what = `conveyor ${JSON.stringify(args).slice(0, 300)} → ${result.code}\nstderr: ${result.stderr.slice(0, 500)}`;
    assert.equal(result.code, 0, what);
    const task = JSON.parse(result.stdout);
    assert.equal(task.type, "echo", what);
    const data = args.find((a, i) => i >= 2 && !a.startsWith("-") && !args[i - 1]!.startsWith("--") === true);
    if (data !== undefined) assert.deepEqual(task.data, JSON.parse(data), what);
    const queue = args[args.indexOf("--queue") + 1];
    if (args.includes("--queue")) assert.equal(task.queue, queue, what);
  });

  const variables = Object.keys(ENVIRONMENT);
  const environment = fc.asyncProperty(
    fc.dictionary(fc.constantFrom(...variables), text, { maxKeys: 5 }),
    fc.dictionary(
      fc.constantFrom("port", "concurrency", "heartbeat-ms", "dead-after", "grace-ms", "token", "name"),
      text,
      { maxKeys: 3 },
    ),
    async (env, flags) => {
      try {
        const config = startConfig(flags, env) as Record<string, unknown>;
        for (const [variable, value] of Object.entries(env)) {
          const { key, kind } = ENVIRONMENT[variable]!;
          if (value === "" || Object.values(flags).length > 0) continue;
          if (kind.type === "integer") assert.equal(config[key], Number(value), `${variable}=${value}`);
          if (kind.type === "string") assert.equal(config[key], value, `${variable}=${value}`);
        }
      } catch (error) {
        assert.ok(error instanceof ConveyorError, `not a ConfigError: ${String(error)}`);
        assert.equal(error.code, "config_invalid");
        const names = [...Object.keys(env), ...Object.keys(flags).map((f) => `--${f}`)];
        assert.ok(
          names.some((name) => error.message.includes(name)),
          `the message names no variable or flag: ${error.message}`,
        );
      }
    },
  );

  return {
    properties: [
      {
        name: "command lines: exit 0, 1 or 2 with one clear line, never a stack trace",
        weight: 2,
        property: commandLine,
      },
      { name: "a valid enqueue prints the task it added", property: validRun },
      { name: "environment and flags: a setting, or a ConfigError naming it", property: environment },
    ],
    close() {
      for (const [name, value] of [
        ["CONVEYOR_DATABASE", saved.database],
        ["CONVEYOR_SCHEMA", saved.schema],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
