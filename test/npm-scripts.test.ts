/**
 * npm scripts under a process manager. Docker, systemd or a CI runner stop `npm start` with SIGTERM to npm;
 * npm hands it on to the script's shell, and a shell that merely runs `node …` dies of it and leaves the node
 * running, orphaned. So every script that starts a node `exec`s it (the shell becomes the node), and this
 * checks it: statically for each script, and for real with `npm start` on a temporary SQLite file, where
 * SIGTERM to npm stops the node gracefully (a running task handed back), npm exits 0 and no process is left.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Conveyor } from "../src/index.ts";
import { withTimeout } from "./support/watched-process.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

test("every npm script that runs node execs it, so that npm's signals reach the node", () => {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  const runsNode = Object.entries(scripts).filter(([, command]) => /(^|[\s;&|(])node\s/.test(command));
  assert.ok(runsNode.some(([name]) => name === "start"));
  for (const [name, command] of runsNode) {
    assert.match(command, /(^|&& )exec node\s/, `script "${name}" must start its node with "exec node …"`);
    assert.doesNotMatch(command, /(^|[\s;&|(])(?<!exec )node\s/, `script "${name}" runs a node without exec`);
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

test("SIGTERM to `npm start` stops its node gracefully: a running task handed back, exit 0, no orphan", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-npm-start-"));
  const database = join(dir, "conveyor.db");
  // The system's npm, on the Node running this test (npm's `#!/usr/bin/env node`), as a process manager runs it.
  const npm = spawn("npm", ["start"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
      PORT: "0",
      HOST: "127.0.0.1",
      CONVEYOR_DATABASE: database,
      CONVEYOR_SHUTDOWN_GRACE_MS: "500",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  npm.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  npm.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let nodePid: number | null = null;
  t.after(() => {
    // Whatever failed, nothing of it runs on.
    if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
    if (nodePid !== null && alive(nodePid)) process.kill(nodePid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  // The node's log line "… listening on http://127.0.0.1:<port>" (pino JSON, with the node's pid).
  const listening = await withTimeout(
    new Promise<{ pid: number; url: string }>((resolve, reject) => {
      const check = () => {
        for (const line of output.split("\n")) {
          const url = /listening on (http:\/\/\S+?)"/.exec(line)?.[1];
          if (url !== undefined) return resolve({ pid: (JSON.parse(line) as { pid: number }).pid, url });
        }
      };
      npm.stdout.on("data", check);
      void exited.then((exit) => reject(new Error(`npm start exited (${JSON.stringify(exit)}) before listening`)));
    }),
    30_000,
    "npm start to listen",
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${output}`);
  });
  nodePid = listening.pid;
  assert.notEqual(nodePid, npm.pid);

  // A task that is running when SIGTERM comes, and would run for a minute.
  const created = await fetch(`${listening.url}/api/tasks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "demo.sleep", data: { ms: 60_000, steps: 600 } }),
  });
  assert.equal(created.status, 201);
  const { task } = (await created.json()) as { task: { id: number; state: string } };
  const deadline = Date.now() + 10_000;
  for (let state = task.state; state !== "running"; ) {
    assert.ok(Date.now() < deadline, `task ${task.id} did not start (${state})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const response = await fetch(`${listening.url}/api/tasks/${task.id}`);
    state = ((await response.json()) as { task: { state: string } }).task.state;
  }

  npm.kill("SIGTERM");
  const exit = await withTimeout(exited, 15_000, "npm to exit after SIGTERM").catch((error: Error) => {
    throw new Error(`${error.message}\n${output}`);
  });
  assert.deepEqual(exit, { code: 0, signal: null }, `npm's exit\n${output}`);
  assert.equal(alive(nodePid), false, `the node (pid ${nodePid}) outlived npm\n${output}`);
  assert.match(output, /"msg":"SIGTERM: stopping/);
  assert.match(output, /"msg":"stopped"/);

  // Handed back: queued again on the store, not failed and not left running for a rescuer to find.
  const conveyor = new Conveyor({ database });
  try {
    const after = await conveyor.get(task.id);
    assert.equal(after?.state, "queued", JSON.stringify(after));
  } finally {
    await conveyor.stop();
  }
});
