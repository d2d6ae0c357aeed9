/**
 * The `conveyor` command line: `conveyor <command> [options]`.
 */
import { ConveyorError } from "../core/errors.ts";
import { UsageError } from "./args.ts";
import { enqueue, ENQUEUE_HELP } from "./enqueue.ts";
import { migrate, MIGRATE_HELP } from "./migrate.ts";
import { start, START_HELP } from "./start.ts";

const HELP = `Usage: conveyor <command> [options]

Commands:
  start     run a node: workers, services and the HTTP API
  enqueue   add a task
  migrate   apply (or list) the store's migrations

Run "conveyor <command> --help" for a command's options.
`;

const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; help: string }> = {
  start: { run: start, help: START_HELP },
  enqueue: { run: enqueue, help: ENQUEUE_HELP },
  migrate: { run: migrate, help: MIGRATE_HELP },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`conveyor: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  try {
    await command.run(args);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`conveyor ${name}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof ConveyorError) {
      // A ConfigError names the variable or flag at fault; no stack trace for a user's typo.
      process.stderr.write(`conveyor ${name}: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** Runs the command line as this process (here when run directly, from bin/conveyor.js when installed). */
export async function runAsProcess(argv: string[]): Promise<void> {
  const code = await main(argv);
  // `start` keeps running (its server holds the process); the others end here.
  if (code !== 0 || argv[0] !== "start") process.exitCode = code;
}

if (import.meta.main) await runAsProcess(process.argv.slice(2));
