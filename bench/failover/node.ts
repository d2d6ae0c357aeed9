/**
 * One `conveyor start` process of the failover bench, with bench/failover/handlers.ts, on loopback: its stdout lines
 * kept with the time they came, its HTTP API, a kill -9.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../lib/cli-node.ts";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const HANDLERS = fileURLToPath(new URL("./handlers.ts", import.meta.url));

export type Line = { text: string; json: Record<string, unknown> | null; at: number };

export type NodeSpec = {
  name: string;
  database: string;
  schema: string;
  concurrency?: number;
  /** Timing flags; none: the product's defaults. */
  heartbeatMs?: number;
  env?: Record<string, string>;
};

export class BenchNode {
  readonly name: string;
  readonly lines: Line[] = [];
  readonly process: ChildProcess;
  readonly url: string;
  nodeId = "";
  exited = false;
  stderr = "";

  private constructor(spec: NodeSpec, port: number) {
    this.name = spec.name;
    this.url = `http://127.0.0.1:${port}`;
    const args = [MAIN, "start", "--database", spec.database, "--schema", spec.schema, "--port", String(port)];
    args.push("--host", "127.0.0.1", "--handlers", HANDLERS, "--name", spec.name);
    args.push("--concurrency", String(spec.concurrency ?? 1));
    if (spec.heartbeatMs !== undefined) args.push("--heartbeat-ms", String(spec.heartbeatMs));
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env))
      if (value !== undefined && !key.startsWith("CONVEYOR_")) env[key] = value;
    Object.assign(env, { CONVEYOR_LOG_LEVEL: "info", ...spec.env });
    this.process = spawn(process.execPath, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    this.process.once("exit", () => (this.exited = true));
    this.process.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-2000);
    });
    createInterface({ input: this.process.stdout! }).on("line", (text) => {
      let json: Record<string, unknown> | null = null;
      if (text.startsWith("{")) {
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {}
      }
      const msg = typeof json?.msg === "string" ? json.msg : "";
      const listening = /^conveyor node .* \((node-[0-9a-f]+)\) on .* listening on /.exec(msg);
      if (listening !== null) this.nodeId = listening[1]!;
      this.lines.push({ text, json, at: Date.now() });
    });
  }

  /** Starts a node and waits until it serves HTTP. */
  static async start(spec: NodeSpec): Promise<BenchNode> {
    const node = new BenchNode(spec, await freePort());
    await node.until(`${spec.name} to listen`, () => (node.nodeId === "" ? undefined : true), 60_000);
    return node;
  }

  /** Plain lines starting with `word`, split in words, from line index `from` on. */
  words(word: string, from = 0): { words: string[]; at: number }[] {
    return this.lines
      .slice(from)
      .filter((l) => l.json === null && l.text.startsWith(`${word} `))
      .map((l) => ({ words: l.text.split(" "), at: l.at }));
  }

  /** Node events (the `event` field of a log line) named `name`, from line index `from` on. */
  events(name: string, from = 0): Record<string, unknown>[] {
    return this.lines
      .slice(from)
      .filter((l) => l.json?.event === name)
      .map((l) => l.json!);
  }

  async until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (this.exited) throw new Error(`${this.name} exited while waiting for ${what}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status >= 400) throw new Error(`${method} ${path} on ${this.name}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** kill -9; resolves with the time of the kill once the process is gone. */
  async kill9(): Promise<number> {
    const at = Date.now();
    if (this.exited) return at;
    const gone = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.kill("SIGKILL");
    await gone;
    return at;
  }
}
