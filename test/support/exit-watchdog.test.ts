/**
 * The exit watchdog, run as npm test runs it (`node --import ./test/support/exit-watchdog.ts --test FILE`) on test
 * files made for it, with its delays shortened: a file whose process outlives its tests is ended and says what held
 * it, its tests' results unchanged; a file that never finishes fails at the limit; a file whose process would spin
 * in Node's teardown exits; a bad delay is refused by name.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { WatchedProcess, withTimeout } from "./watched-process.ts";

const WATCHDOG = new URL("./exit-watchdog.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "exit-watchdog-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a test file as npm test would; its output is stdout's lines, then stderr. Killed if not done in 20 s. */
async function runFile(
  name: string,
  source: string,
  delays: Record<string, string> = { EXIT_WATCHDOG_AFTER_MS: "300", EXIT_WATCHDOG_LIMIT_MS: "3000" },
): Promise<{ code: number | null; out: string; ms: number }> {
  const file = join(dir, name);
  writeFileSync(file, source);
  // The runner under test is a top-level one: without the context this file's own runner gave its process.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const started = performance.now();
  const child = new WatchedProcess(name, ["--import", WATCHDOG, "--test", file], { env: { ...env, ...delays } });
  // 'close' comes once the output has all been read, which 'exit' does not wait for.
  const closed = once(child.process, "close") as Promise<[number | null]>;
  const [code] = await withTimeout(closed, 20_000, `${name} to exit`).catch(async (error) => {
    await child.kill9();
    throw error;
  });
  const out = `${child.lines.map((line) => line.text).join("\n")}\n${child.stderr}`;
  return { code, out, ms: performance.now() - started };
}

test("a file whose process outlives its passing tests is ended, says what held it, and still passes", async () => {
  const { code, out } = await runFile(
    "leaks.test.mjs",
    `import { test } from "node:test";
     import net from "node:net";
     test("leaves a server listening", async () => {
       const server = net.createServer().listen(0, "127.0.0.1");
       await new Promise((resolve) => server.once("listening", resolve));
     });`,
  );
  assert.equal(code, 0, out);
  assert.match(out, /\[exit-watchdog\] .*leaks\.test\.mjs: its tests ended 0\.3 s ago and its process is still up/);
  assert.match(out, /\[exit-watchdog\] {3}tcp \S+:\d+ -> \?/);
  assert.match(out, /ℹ pass 1/);
});

test("a failing test stays failed when the watchdog ends its process", async () => {
  const { code, out } = await runFile(
    "fails.test.mjs",
    `import { test } from "node:test";
     test("fails and leaves a timer", () => { setInterval(() => {}, 1000); throw new Error("boom"); });`,
  );
  assert.match(out, /\[exit-watchdog\]/);
  assert.match(out, /ℹ fail 1/);
  assert.equal(code, 1, out);
});

test("a file that never finishes fails at the limit", async () => {
  const { code, out, ms } = await runFile(
    "hangs.test.mjs",
    `import { test } from "node:test";
     test("waits for ever", () => new Promise(() => setInterval(() => {}, 1000)));`,
  );
  assert.match(out, /\[exit-watchdog\] .*hangs\.test\.mjs: still running after 3 s/);
  assert.match(out, /timer|Timeout/);
  assert.equal(code, 1, out);
  assert.ok(ms < 15_000, `ended after ${ms} ms`);
});

test("a file whose process would spin in Node's teardown exits", async () => {
  // A socket ended and reset in the same tick: Node 24.21 strands its handle, and teardown waits for it for ever.
  const { code, out } = await runFile(
    "strands.test.mjs",
    `import { test } from "node:test";
     import { connect, createServer } from "node:net";
     test("strands a handle", async () => {
       await new Promise((resolve) => {
         const server = createServer((socket) => {
           socket.on("error", () => {});
           socket.on("close", resolve);
           socket.end("bye");
           socket.resetAndDestroy();
           server.close();
         });
         server.listen(0, "127.0.0.1", () => {
           const client = connect({ port: server.address().port, host: "127.0.0.1", allowHalfOpen: true });
           client.on("error", () => {});
           client.resume();
           setTimeout(() => { client.destroy(); resolve(); }, 100);
         });
       });
     });
     process.on("exit", () => console.log("the file's own exit listener ran"));`,
  );
  assert.equal(code, 0, out);
  assert.match(out, /ℹ pass 1/);
  assert.match(out, /the file's own exit listener ran/);
});

test("a delay that is not a whole number of milliseconds stops the file with its name", async () => {
  const { code, out } = await runFile(
    "bad-delay.test.mjs",
    `import { test } from "node:test"; test("passes", () => {});`,
    {
      EXIT_WATCHDOG_AFTER_MS: "300",
      EXIT_WATCHDOG_LIMIT_MS: "ten minutes",
    },
  );
  assert.match(out, /EXIT_WATCHDOG_LIMIT_MS must be a whole number of milliseconds, not "ten minutes"/);
  assert.notEqual(code, 0, out);
});

test("a file that exits by itself is left alone", async () => {
  const { code, out } = await runFile(
    "clean.test.mjs",
    `import { test } from "node:test";
     test("passes", () => {});`,
  );
  assert.equal(code, 0, out);
  assert.doesNotMatch(out, /exit-watchdog/);
});
