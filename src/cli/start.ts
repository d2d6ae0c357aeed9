/**
 * `conveyor start`: run a node, with the HTTP API, until SIGTERM or SIGINT, then shut down gracefully.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import pino from "pino";
import { Conveyor } from "../runtime/conveyor.ts";
import { buildServer } from "../http/server.ts";
import { HELP_FLAG, integerFlag, parse, UsageError } from "./args.ts";

export const START_HELP = `Usage: conveyor start [options]

Run a Conveyor node: its workers, services and HTTP API (dashboard, /api, /metrics).

Options:
  --database <path>     SQLite file (default ./.conveyor/conveyor.db, or $CONVEYOR_DATABASE)
  --port <n>            HTTP port (default 4000, or $PORT)
  --host <addr>         HTTP address to bind (default 0.0.0.0, or $HOST)
  --handlers <module>   a module whose default export registers task types: (conveyor) => void;
                        repeat the flag for several modules
  --concurrency <n>     tasks run at once per queue (default 10, or $CONVEYOR_CONCURRENCY)
  --token <secret>      require "Authorization: Bearer <secret>" on write endpoints ($CONVEYOR_TOKEN)
  --name <name>         this node's name (default host:pid)
  -h, --help            show this help
`;

export type HandlerModule = { default?: unknown; register?: unknown };

export async function loadHandlerModules(conveyor: Conveyor, specifiers: string[]): Promise<void> {
  for (const specifier of specifiers) {
    const url = /^[a-z]+:/.test(specifier) ? specifier : pathToFileURL(resolve(specifier)).href;
    const module = (await import(url)) as HandlerModule;
    const register = module.default ?? module.register;
    if (typeof register !== "function") {
      throw new UsageError(`${specifier} must export a function (default or "register") taking the conveyor`);
    }
    await register(conveyor);
  }
}

export async function start(args: string[]): Promise<void> {
  const { values } = parse(args, {
    help: HELP_FLAG,
    database: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    handlers: { type: "string", multiple: true },
    concurrency: { type: "string" },
    token: { type: "string" },
    name: { type: "string" },
  });
  if (values.help) return void process.stdout.write(START_HELP);
  const env = process.env;
  const port = integerFlag("port", values.port ?? env.PORT, 0, 65535) ?? 4000;
  const concurrency = integerFlag("concurrency", values.concurrency ?? env.CONVEYOR_CONCURRENCY, 0, 10_000);
  const logger = pino({ level: env.CONVEYOR_LOG_LEVEL ?? "info" });
  const conveyor = new Conveyor({
    database: values.database ?? env.CONVEYOR_DATABASE,
    concurrency,
    nodeName: values.name,
    logger,
  });
  await loadHandlerModules(conveyor, values.handlers ?? []);
  await conveyor.start();
  const app = await buildServer({ conveyor, token: values.token ?? env.CONVEYOR_TOKEN ?? null, logger: false });
  const address = await app.listen({ port, host: values.host ?? env.HOST ?? "0.0.0.0" });
  logger.info(`conveyor node ${conveyor.nodeName} listening on ${address}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: stopping (running tasks get up to ${conveyor.options.shutdownGraceMs} ms)`);
    await app.close();
    await conveyor.stop();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
