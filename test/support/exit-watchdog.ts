/**
 * Loaded into every test file's process (`node --import ./test/support/exit-watchdog.ts --test ...`): a test file
 * that never exits must not hold the whole suite until CI's limit, and must say what held it.
 *
 * - A file whose tests have all ended but whose process is still up 20 s later (a socket, timer or child left
 *   open) prints what keeps it alive and exits. Its tests' results are already reported, so the exit changes
 *   nothing they said; the leak is shown, not hidden.
 * - A file still running after 10 minutes (a wait that never ends, in a test or a hook) prints the same and exits
 *   with 1, which fails the file.
 * - Once a file's tests have ended, its process leaves through process.exit() from its last 'exit' listener, not
 *   through Node's own teardown. That teardown waits for every handle to finish closing, and a handle libuv never
 *   closes makes it spin for ever with no JavaScript left to run: Node 24.21's resetAndDestroy() during a shutdown in
 *   flight did that, and held test/store-outage.test.ts for 30 minutes after its tests had passed.
 *
 * Both timers are unref'd: a process that is ending anyway is never kept up by them. The runner itself has no
 * such bound (its `timeout` fails a test but leaves its file's process running). Only a test file's own main
 * thread arms them: not the runner's process (which `--import` loads it into too, and which has no
 * NODE_TEST_CONTEXT), and not worker threads (which inherit the flag).
 */
import { after } from "node:test";
import { isMainThread } from "node:worker_threads";

/** A delay overridable for the watchdog's own test; a value that is not a whole number of ms stops the file. */
function delayMs(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(raw))
    throw new Error(`${name} must be a whole number of milliseconds, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

const AFTER_LAST_TEST_MS = delayMs("EXIT_WATCHDOG_AFTER_MS", 20_000);
const FILE_LIMIT_MS = delayMs("EXIT_WATCHDOG_LIMIT_MS", 10 * 60_000);

type UvHandle = {
  type: string;
  is_active?: boolean;
  is_referenced?: boolean;
  localEndpoint?: { host?: string; port?: number } | null;
  remoteEndpoint?: { host?: string; port?: number } | null;
  pid?: number;
  timeout?: number;
};

function endpoint(value: UvHandle["localEndpoint"]): string {
  return value?.port === undefined ? "?" : `${value.host ?? "?"}:${value.port}`;
}

/** What keeps the process up: every referenced, active libuv handle, with its addresses where it has them. */
function whatKeepsItUp(): string[] {
  const report = process.report.getReport() as unknown as { libuv?: UvHandle[] };
  const lines = (report.libuv ?? [])
    .filter((handle) => handle.is_active === true && handle.is_referenced === true)
    .map((handle) => {
      if (handle.type === "tcp") return `tcp ${endpoint(handle.localEndpoint)} -> ${endpoint(handle.remoteEndpoint)}`;
      if (handle.type === "process") return `child process ${handle.pid ?? "?"}`;
      if (handle.type === "timer") return `timer (due in ${handle.timeout ?? "?"} ms)`;
      return handle.type;
    });
  lines.push(`resources: ${process.getActiveResourcesInfo().join(", ")}`);
  return lines;
}

function leave(why: string, code: number): void {
  const file = process.argv[1] ?? "this test file";
  process.stderr.write(`\n[exit-watchdog] ${file}: ${why}. What keeps it up:\n`);
  for (const line of whatKeepsItUp()) process.stderr.write(`[exit-watchdog]   ${line}\n`);
  process.exit(code);
}

if (isMainThread && process.env.NODE_TEST_CONTEXT !== undefined) {
  setTimeout(() => leave(`still running after ${FILE_LIMIT_MS / 1000} s`, 1), FILE_LIMIT_MS).unref();
  after(() => {
    // Registered after everything the file registered, so its own 'exit' listeners still run first.
    process.on("exit", (code) => process.exit(code));
    setTimeout(
      () => leave(`its tests ended ${AFTER_LAST_TEST_MS / 1000} s ago and its process is still up`, 0),
      AFTER_LAST_TEST_MS,
    ).unref();
  });
}
