/**
 * The live bench's processes talk over Node's IPC channel: the parent calls a named command of a child and awaits
 * its answer; a child serves the commands it knows and says when it is ready. One small protocol for the servers
 * and the load generators alike, so that the scenario (scenario.ts) reads as a sequence of calls.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

type Request = { id: number; command: string; args: unknown };
type Reply = { id: number; value?: unknown; error?: string };
type Ready = { ready: unknown } | { failed: string };

export type Handlers = Record<string, (args: any) => unknown>;

/** A child process seen from the parent: call its commands; kill it. */
export class Peer {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #waiting = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  #next = 0;
  #exit: string | null = null;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    child.on("message", (message: Reply) => {
      const waiting = this.#waiting.get(message.id);
      if (waiting === undefined) return;
      this.#waiting.delete(message.id);
      if (message.error !== undefined) waiting.reject(new Error(`${name}: ${message.error}`));
      else waiting.resolve(message.value);
    });
    child.on("exit", (code, signal) => {
      this.#exit = `${name} exited (${signal ?? `code ${code}`})`;
      for (const { reject } of this.#waiting.values()) reject(new Error(this.#exit));
      this.#waiting.clear();
    });
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  call<T = unknown>(command: string, args: unknown = {}): Promise<T> {
    if (this.#exit !== null) return Promise.reject(new Error(this.#exit));
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#child.send({ id, command, args } satisfies Request);
    });
  }

  /** Asks the child to exit (it finishes what it is doing first), and kills it if it has not within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exit !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.call("exit").catch(() => {});
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.#exit === null) this.#child.kill("SIGKILL");
  }
}

/**
 * Starts `file` as a child process and waits for it to be ready; its readiness value (a port, say) comes back
 * with it. A child that fails to set up rejects with its reason.
 */
export function startChild<T>(
  name: string,
  file: URL,
  options: { args?: unknown; execArgv?: string[] } = {},
): Promise<{ peer: Peer; ready: T }> {
  const child = fork(fileURLToPath(file), [JSON.stringify(options.args ?? {})], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: options.execArgv ?? [],
  });
  const peer = new Peer(name, child);
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before it was ready`));
    child.once("exit", onExit);
    child.once("message", (message: Ready) => {
      child.off("exit", onExit);
      if ("failed" in message) {
        child.kill("SIGKILL");
        reject(new Error(message.failed));
      } else resolve({ peer, ready: message.ready as T });
    });
  });
}

/** The arguments the parent gave this child. */
export function childArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? "{}") as T;
}

/**
 * In a child: set up with `setup` (its value tells the parent it is ready), then serve `handlers` until the
 * parent asks it to exit or goes away. `exit` runs `cleanup` first, so that a profile (--cpu-prof) is written
 * and connections are closed.
 */
export async function serve<T>(setup: () => Promise<{ ready: T; handlers: Handlers; cleanup?: () => Promise<void> }>) {
  let served: Awaited<ReturnType<typeof setup>>;
  try {
    served = await setup();
  } catch (error) {
    process.send!({ failed: error instanceof Error ? error.message : String(error) } satisfies Ready, () =>
      process.exit(1),
    );
    return;
  }
  const exit = async () => {
    await served.cleanup?.().catch(() => {});
    process.exit(0);
  };
  // A parent that died (or was killed) must not leave this process serving sockets on its own.
  process.on("disconnect", () => void exit());
  process.on("message", async ({ id, command, args }: Request) => {
    if (command === "exit") return exit();
    const handler = served.handlers[command];
    let reply: Reply;
    try {
      if (handler === undefined) throw new Error(`unknown command ${command}`);
      reply = { id, value: (await handler(args)) ?? null };
    } catch (error) {
      reply = { id, error: error instanceof Error ? error.message : String(error) };
    }
    process.send!(reply);
  });
  process.send!({ ready: served.ready } satisfies Ready);
}
