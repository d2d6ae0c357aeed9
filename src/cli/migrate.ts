/**
 * `conveyor migrate`: apply the store's pending migrations, or list them with --status.
 */
import { connect } from "../runtime/connect.ts";
import { HELP_FLAG, parse } from "./args.ts";

export const MIGRATE_HELP = `Usage: conveyor migrate [options]

Apply pending migrations to the store (nodes also do this when they start).

Options:
  --database <path|url>  SQLite file (default ./.conveyor/conveyor.db) or postgres:// URL ($CONVEYOR_DATABASE)
  --schema <name>       PostgreSQL schema (default conveyor, or $CONVEYOR_SCHEMA)
  --status            list migrations and whether each is applied; change nothing
  -h, --help          show this help
`;

export async function migrate(args: string[]): Promise<void> {
  const { values } = parse(args, {
    help: HELP_FLAG,
    database: { type: "string" },
    schema: { type: "string" },
    status: { type: "boolean" },
  });
  if (values.help) return void process.stdout.write(MIGRATE_HELP);
  const { store } = connect({
    database: values.database ?? process.env.CONVEYOR_DATABASE,
    schema: values.schema ?? process.env.CONVEYOR_SCHEMA,
  });
  try {
    if (values.status) {
      for (const { name, applied } of await store.migrationStatus())
        console.log(`${applied ? "applied" : "pending"}  ${name}`);
      return;
    }
    const { applied } = await store.migrate();
    for (const name of applied) console.log(`applied  ${name}`);
    console.log(applied.length === 0 ? "up to date" : `${applied.length} migration(s) applied`);
  } finally {
    await store.close();
  }
}
