/**
 * Entry point: `npm run example:task-system` (or `node examples/task-system/server.ts`).
 * Env: PORT (4000), POOL_SIZE (5; 0 queues without running), DATA_DIR (./tmp), MIN_SECONDS/MAX_SECONDS (1/5).
 * SIGTERM or SIGINT stops it gracefully (a second one, a second or more later, exits at once).
 */
import { startTaskSystem } from "./app.ts";
import { configFromEnv, ConfigurationError, type TaskSystemConfig } from "./config.ts";

let config: TaskSystemConfig;
try {
  config = configFromEnv(process.env);
} catch (error) {
  if (!(error instanceof ConfigurationError)) throw error;
  console.error(`task-system: ${error.message}`);
  process.exit(2);
}

const system = await startTaskSystem(config);
console.log(
  `Running TaskApi at http://localhost:${system.port} (pool size ${config.poolSize}, data in ${config.dataDir})`,
);

// Ctrl-C under `npm run` arrives twice within a few ms: from the terminal, and forwarded by npm, whose script
// `exec`s this node. So a repeat within REPEAT_MS is the same request; a later one exits at once.
const REPEAT_MS = 1000;
let signalledAt: number | null = null;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalledAt !== null) {
      if (Date.now() - signalledAt < REPEAT_MS) return;
      console.error(`task-system: ${signal} again, exiting now`);
      process.exit(1);
    }
    signalledAt = Date.now();
    console.log(`Received ${signal}, stopping (running tasks get up to 10 s to finish, then go back to the queue)`);
    system.stop().then(
      () => {
        console.log("Stopped.");
        process.exitCode = 0;
        // Everything is closed, so the process ends by itself; this only guards against a stray handle.
        setTimeout(() => process.exit(0), 2000).unref();
      },
      (error: unknown) => {
        console.error("task-system: stopping failed:", error);
        process.exit(1);
      },
    );
  });
}
