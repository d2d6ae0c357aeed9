/**
 * Entry point: `npm run example:downloads` (or `node examples/downloads/server.ts`) starts one node.
 * Env (README): PORT, CONVEYOR_DATABASE (SQLite path, default DATA_DIR/downloads.db; or postgres://…, shared by
 * the cluster's nodes), SESSION_SECRET, APP_VERSION, NODE_NAME, DOWNLOAD_START_MS / _PROCESS_MS / _READY_MS / _TTL_MS.
 * SIGTERM or SIGINT stops it: its jobs are handed over at once and resume on another node (or at the next start).
 */
import { startDownloads } from "./app.ts";
import { ConfigurationError, configFromEnv, type DownloadsConfig } from "./config.ts";

let config: DownloadsConfig;
try {
  config = configFromEnv(process.env);
} catch (error) {
  if (!(error instanceof ConfigurationError)) throw error;
  console.error(`downloads: ${error.message}`);
  process.exit(2);
}
if (config.sessionSecretIsDefault) {
  console.error(
    "downloads: SESSION_SECRET is not set: using the development default. Set one (16+ characters), the same on every node.",
  );
}

const node = await startDownloads(config);
const where = config.database.startsWith("postgres") ? `PostgreSQL, schema ${config.schema}` : config.database;
console.log(
  `Download manager listening on http://localhost:${node.port} (node ${config.nodeName}, version ${config.appVersion}, ${where})`,
);

// Ctrl-C under `npm run` arrives twice within a few ms (from the terminal, and forwarded by npm): one request.
const REPEAT_MS = 1000;
let signalledAt: number | null = null;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalledAt !== null) {
      if (Date.now() - signalledAt < REPEAT_MS) return;
      console.error(`downloads: ${signal} again, exiting now`);
      process.exit(1);
    }
    signalledAt = Date.now();
    console.log(`Received ${signal}, stopping (running downloads are handed over to another node)`);
    node.stop().then(
      () => {
        console.log("Stopped.");
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 2000).unref();
      },
      (error: unknown) => {
        console.error("downloads: stopping failed:", error);
        process.exit(1);
      },
    );
  });
}
