#!/usr/bin/env node
// The `conveyor` command. In a checkout it runs the TypeScript sources; installed from npm, where Node does not
// strip types (it never does under node_modules) and src/ is not shipped, it runs the JavaScript that
// `npm pack` built into dist/ (npm run build).
// Conveyor needs Node 24 (node:sqlite). When the node running this is older, the command runs again with the
// Node 24 of the `node` package beside Conveyor (a checkout's dev dependency), and hands SIGTERM and SIGINT on.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  const source = new URL("../src/cli/main.ts", import.meta.url);
  const { runAsProcess } = await import(existsSync(source) ? source.href : "../dist/cli/main.js");
  await runAsProcess(process.argv.slice(2));
} else {
  let node;
  try {
    node = join(dirname(createRequire(import.meta.url).resolve("node/package.json")), "bin", "node");
  } catch {
    console.error(`conveyor needs Node.js 24 or newer (this is ${process.version})`);
    process.exit(1);
  }
  const child = spawn(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  const forward = (signal) => child.kill(signal);
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, forward);
  child.on("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // Die of the same signal, as a shell expects.
    process.removeListener(signal, forward);
    process.kill(process.pid, signal);
  });
}
