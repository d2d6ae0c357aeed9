#!/usr/bin/env node
// The `conveyor` command. Conveyor needs Node 24 (node:sqlite, TypeScript type stripping); when the node on
// PATH is older, re-run this command with the Node 24 that the `node` package installed beside Conveyor.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  await import("../src/cli/main.ts");
} else {
  let node;
  try {
    node = join(dirname(createRequire(import.meta.url).resolve("node/package.json")), "bin", "node");
  } catch {
    console.error(`conveyor needs Node.js 24 or newer (this is ${process.version}); run "npm install" first`);
    process.exit(1);
  }
  const { status } = spawnSync(node, [new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(status ?? 1);
}
