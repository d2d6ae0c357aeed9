/**
 * Entry point: `npm run example:todo` (or `node examples/todo/server.ts`).
 * Env: APP_MODE (engine | worker, any case; default engine), PORT (4000), HOST, AMQP_URL
 * (amqp://guest:guest@localhost:5672), and for the engine CONVEYOR_DATABASE (default ./tmp/ztd.db under DATA_DIR, or
 * a postgres:// URL) and CONVEYOR_SCHEMA (ztd). A bad APP_MODE exits 1 with "Unknown Application Mode" before
 * anything listens or connects; another bad value exits 2. SIGTERM or SIGINT stops it gracefully.
 */
import { startTodo } from "./app.ts";
import { ConfigurationError, configFromEnv, type TodoConfig, UnknownModeError } from "./config.ts";

let config: TodoConfig;
try {
  config = configFromEnv(process.env);
} catch (error) {
  if (error instanceof UnknownModeError) {
    console.error(`ztd: ${error.message}`);
    process.exit(1);
  }
  if (!(error instanceof ConfigurationError)) throw error;
  console.error(`ztd: ${error.message}`);
  process.exit(2);
}

const todo = await startTodo(config);
const where = config.mode === "engine" ? `, items in ${todo.engine!.items.description}` : "";
console.log(`ZTD ${config.mode} running at http://localhost:${todo.port} (broker ${redact(config.amqpUrl)}${where})`);

// Ctrl-C under `npm run` arrives twice within a few ms (from the terminal, and forwarded by npm): one request.
const REPEAT_MS = 1000;
let signalledAt: number | null = null;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalledAt !== null) {
      if (Date.now() - signalledAt < REPEAT_MS) return;
      console.error(`ztd: ${signal} again, exiting now`);
      process.exit(1);
    }
    signalledAt = Date.now();
    console.log(`Received ${signal}, stopping`);
    todo.stop().then(
      () => {
        console.log("Stopped.");
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 2000).unref();
      },
      (error: unknown) => {
        console.error("ztd: stopping failed:", error);
        process.exit(1);
      },
    );
  });
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}
