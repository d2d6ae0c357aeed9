/**
 * A child process a multi-process test waits on: its stdout kept line by line (with arrival time, and parsed
 * when a line is JSON), the tail of its stderr, and waits that resolve on a line or fail — bounded — with
 * what the child said last. The crash-safety suite and the cluster harness both build their nodes on it.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { EventEmitter } from "node:events";
import { createInterface } from "node:readline";

export type Exit = { code: number | null; signal: NodeJS.Signals | null };
export type Line = { text: string; at: number; json: Record<string, unknown> | null };

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class WatchedProcess {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly lines: Line[] = [];
  stderr = "";
  exit: Exit | null = null;
  killedAt: number | null = null;
  readonly #events = new EventEmitter();

  /** Runs `node <args>` with `options` (stdout and stderr piped); `onLine` sees each line before any wait does. */
  constructor(
    name: string,
    args: string[],
    options: Pick<SpawnOptions, "cwd" | "env">,
    onLine: (line: Line) => void = () => {},
  ) {
    this.name = name;
    this.#events.setMaxListeners(100);
    this.process = spawn(process.execPath, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.#events.emit("change");
        resolve(this.exit);
      });
    });
    createInterface({ input: this.process.stdout! }).on("line", (text: string) => {
      const line = { text, at: Date.now(), json: parseJsonLine(text) };
      this.lines.push(line);
      onLine(line);
      this.#events.emit("change");
    });
    this.process.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-8000);
    });
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /**
   * Resolves once `ok()` returns a value (checked on each output line); fails on timeout, or when the child exits
   * first.
   */
  until<T>(what: string, ok: () => T | undefined | false, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = ok();
        if (value !== undefined && value !== false) return finish(undefined, value);
        if (this.exit !== null)
          finish(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before: ${what}${this.tail()}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for: ${what}${this.tail()}`)),
        timeoutMs,
      );
      const finish = (error?: Error, value?: T) => {
        clearTimeout(timer);
        this.#events.off("change", check);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      this.#events.on("change", check);
      check();
    });
  }

  /** SIGKILL, then wait for the exit, so nothing of it runs on. Returns the time of the kill. */
  async kill9(): Promise<number> {
    const at = Date.now();
    this.killedAt = at;
    this.process.kill("SIGKILL");
    const exit = await withTimeout(this.exited, 5000, `${this.name} to die after SIGKILL`);
    assert.equal(exit.signal, "SIGKILL", `${this.name} should die of SIGKILL`);
    return at;
  }

  tail(): string {
    return `\n  ${this.name} last stdout: ${this.lines
      .slice(-6)
      .map((l) => l.text.slice(0, 300))
      .join("\n    ")}\n  stderr: ${this.stderr.slice(-1500)}`;
  }
}

function parseJsonLine(text: string): Record<string, unknown> | null {
  if (!text.startsWith("{")) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}
