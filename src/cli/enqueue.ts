/**
 * `conveyor enqueue <type> [data]`: add a task straight into the store (no running node needed; a node on
 * the same store picks it up), optionally waiting for its result.
 */
import { Conveyor } from "../runtime/conveyor.ts";
import type { Json } from "../core/task.ts";
import { HELP_FLAG, integerFlag, parse, UsageError } from "./args.ts";

export const ENQUEUE_HELP = `Usage: conveyor enqueue <type> [data-json] [options]

Add a task. Prints the task as JSON.

Options:
  --database <path|url>  SQLite file (default ./.conveyor/conveyor.db) or postgres:// URL ($CONVEYOR_DATABASE)
  --schema <name>        PostgreSQL schema (default conveyor, or $CONVEYOR_SCHEMA)
  --queue <name>         queue (default: the type's, else "default")
  --priority <n>         higher runs first (default 0)
  --delay <ms>           run no sooner than this many ms from now
  --key <key>            uniqueness key: no second active task with this key
  --max-attempts <n>     attempts in all before the task fails
  --wait <seconds>       wait for the task to finish and print it (progress is printed meanwhile)
  -h, --help             show this help
`;

export async function enqueue(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    {
      help: HELP_FLAG,
      database: { type: "string" },
      schema: { type: "string" },
      queue: { type: "string" },
      priority: { type: "string" },
      delay: { type: "string" },
      key: { type: "string" },
      "max-attempts": { type: "string" },
      wait: { type: "string" },
    },
    true,
  );
  if (values.help) return void process.stdout.write(ENQUEUE_HELP);
  const [type, dataText, ...rest] = positionals;
  if (type === undefined) throw new UsageError("missing <type>; see conveyor enqueue --help");
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  let data: Json = null;
  if (dataText !== undefined) {
    try {
      data = JSON.parse(dataText) as Json;
    } catch (error) {
      throw new UsageError(`data is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const waitSeconds = integerFlag("wait", values.wait, 0, 24 * 3600);
  const conveyor = new Conveyor({
    database: values.database ?? process.env.CONVEYOR_DATABASE,
    schema: values.schema ?? process.env.CONVEYOR_SCHEMA,
    pollIntervalMs: 250,
  });
  try {
    const task = await conveyor.enqueue(type, data, {
      queue: values.queue,
      priority: integerFlag("priority", values.priority, -1_000_000, 1_000_000),
      delay: integerFlag("delay", values.delay, 0),
      key: values.key,
      maxAttempts: integerFlag("max-attempts", values["max-attempts"], 1, 1000),
    });
    if (waitSeconds === undefined) return void console.log(JSON.stringify(task, null, 2));
    console.error(`task ${task.id} enqueued; waiting up to ${waitSeconds} s`);
    const timer = setInterval(() => void reportProgress(conveyor, task.id), 1000);
    try {
      console.log(JSON.stringify(await conveyor.waitForFinish(task.id, waitSeconds * 1000), null, 2));
    } finally {
      clearInterval(timer);
    }
  } finally {
    await conveyor.stop();
  }
}

async function reportProgress(conveyor: Conveyor, id: number): Promise<void> {
  const task = await conveyor.get(id);
  if (task === null) return;
  const percent = task.progress === null ? "" : ` ${Math.round(task.progress.percent)}%`;
  console.error(`task ${id}: ${task.state}${percent}`);
}
