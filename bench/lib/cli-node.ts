/**
 * A Conveyor node as an operator runs it: `conveyor start` (src/cli/main.ts) in a process of its own, on a loopback
 * port, with a handlers module; used by the load and soak benches, which measure the product as shipped rather
 * than a node built by hand in the bench's process. Its log (warnings and up) goes to a file in the temp folder.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { freePort } from "../../test/support/free-port.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export type CliNodeOptions = {
  name: string;
  database: string;
  schema?: string;
  handlers: string;
  concurrency?: number;
  env?: Record<string, string>;
};

export type CliNode = { name: string; url: string; process: ChildProcess; log: string; stop: () => Promise<void> };

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** A port free on loopback now: the tests' own (the node binds it a moment later). */
export { freePort };

export async function startCliNode(options: CliNodeOptions): Promise<CliNode> {
  const port = await freePort();
  const log = join(tmpdir(), `conveyor-bench-${options.name}-${process.pid}-${port}.log`);
  const out = openSync(log, "w");
  const args = [
    MAIN,
    "start",
    "--database",
    options.database,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--handlers",
    options.handlers,
    "--name",
    options.name,
    // No token is set, so no limit applies; said anyway, since 1,000 clients from one address is the point.
    "--rate-limit",
    "0",
    ...(options.schema === undefined ? [] : ["--schema", options.schema]),
    ...(options.concurrency === undefined ? [] : ["--concurrency", String(options.concurrency)]),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", out, out],
    env: { ...process.env, CONVEYOR_LOG_LEVEL: "warn", ...options.env },
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`${options.name} exited before it answered /api/health; its log: ${log}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${options.name} did not answer /api/health within 60 s; its log: ${log}`);
    }
    try {
      const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stop = async () => {
    if (gone) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  };
  return { name: options.name, url, process: child, log, stop };
}
