/**
 * The published package, as a user gets it: `npm pack` (whose prepack builds dist/: Node strips types from no
 * file under node_modules, so an installed Conveyor runs compiled JavaScript) installed into an empty project,
 * which then runs the README's library example on a SQLite file of its own (an inline handler and a
 * thread-isolated one, whose worker script must be found in dist/ too), imports the browser client from
 * `conveyor-tasks/client`, type-checks both against the package's declarations, and runs the `conveyor` command
 * through npx.
 *
 * Needs the npm registry (or npm's cache) for the package's dependencies.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, globSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TSC = join(ROOT, "node_modules", ".bin", "tsc");
/** npm and the `#!/usr/bin/env node` of the package's bin run on the Node running this test (24), not on an older one. */
const ENV = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };

const run = promisify(execFile);

async function sh(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, env: ENV, timeout: 120_000, maxBuffer: 16 << 20 });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(" ")} failed in ${cwd}\n${stdout ?? ""}\n${stderr ?? ""}`, { cause: error });
  }
}

const EXAMPLE = `import { Conveyor, UnrecoverableError } from "conveyor-tasks";

const conveyor = new Conveyor({ database: "./conveyor.db", concurrency: 10 });

conveyor.define(
  "email.send",
  async (data: { to: string }, ctx) => {
    ctx.progress(10, { step: "rendering" });
    if (data.to === "") throw new UnrecoverableError("no address");
    return { sent: true, to: data.to };
  },
  { maxAttempts: 5, timeoutMs: 30_000, backoff: { baseMs: 1000 } },
);
conveyor.define("video.encode", new URL("./encode.ts", import.meta.url), { isolation: "thread", graceMs: 2000 });

await conveyor.start();
const task = await conveyor.enqueue("email.send", { to: "a@example.com" }, { key: "welcome:a@example.com", priority: 5 });
const video = await conveyor.enqueue("video.encode", { frames: 21 });
console.log(JSON.stringify([await conveyor.result(task.id), await conveyor.result(video.id)]));
await conveyor.stop();
`;

const ENCODE = `export default async (data: { frames: number }) => ({ encoded: data.frames * 2 });
`;

/** The browser client's entry point, as docs/live-protocol.md imports it (Node 24 has a global WebSocket). */
const CLIENT = `import { LiveClient, type LiveState } from "conveyor-tasks/client";

const state: LiveState = "offline";
console.log(JSON.stringify({ client: typeof LiveClient, subscribe: typeof LiveClient.prototype.subscribe, state }));
`;

/** What an installed node serves at GET /api/live/client.js: the compiled client, read from dist/. */
const SERVED = `import { clientModule } from "./node_modules/conveyor-tasks/dist/realtime/client-module.js";
const { text } = await clientModule();
console.log(JSON.stringify({ module: /^export class LiveClient /m.test(text), typed: /#socket:/.test(text) }));
`;

/** The dashboard the package ships, served by a node:http server under a prefix (createRequestHandler). */
const DASHBOARD = `import http from "node:http";
import { Conveyor, createRequestHandler } from "conveyor-tasks";
const conveyor = new Conveyor({ database: "./dashboard.db" });
const handler = await createRequestHandler({ conveyor, prefix: "/ops" });
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = "http://127.0.0.1:" + server.address().port;
const page = await (await fetch(base + "/ops/tasks/1")).text();
const script = /src="\\.\\/(assets\\/[^"]+\\.js)"/.exec(page)?.[1];
const asset = await fetch(base + "/ops/" + script);
console.log(JSON.stringify({ base: page.includes('<base href="/ops/">'), script: asset.status, type: asset.headers.get("content-type") }));
await handler.close();
server.close();
await conveyor.stop();
`;

test("npm pack installs into an empty project, which runs the README's example and npx conveyor", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-package-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let since = Date.now();
  const lap = (what: string) => {
    t.diagnostic(`${what}: ${Date.now() - since} ms`);
    since = Date.now();
  };

  await sh("npm", ["pack", "--silent", "--pack-destination", dir], ROOT);
  const tarball = readdirSync(dir).find((name) => name.endsWith(".tgz"));
  assert.ok(tarball, `npm pack left no tarball in ${dir}`);
  lap("npm pack (with its build)");

  const project = join(dir, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ private: true, type: "module" }));
  await sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(dir, tarball)], project);
  lap("npm install");

  const installed = join(project, "node_modules", "conveyor-tasks");
  assert.ok(existsSync(join(installed, "dist", "index.js")), "the package ships dist/");
  assert.ok(existsSync(join(installed, "dist", "store", "sqlite", "migrations", "001_init.sql")), "and its SQL");
  assert.ok(!existsSync(join(installed, "src")), "but not the TypeScript sources");
  assert.deepEqual(globSync("**/*.test.*", { cwd: installed }), [], "nor tests");

  writeFileSync(join(project, "example.ts"), EXAMPLE);
  writeFileSync(join(project, "encode.ts"), ENCODE);
  const output = await sh(process.execPath, ["example.ts"], project);
  assert.deepEqual(JSON.parse(output), [{ sent: true, to: "a@example.com" }, { encoded: 42 }]);
  assert.ok(existsSync(join(project, "conveyor.db")), "the example's SQLite file is in its project");
  lap("the README's example");

  writeFileSync(join(project, "client.ts"), CLIENT);
  assert.deepEqual(JSON.parse(await sh(process.execPath, ["client.ts"], project)), {
    client: "function",
    subscribe: "function",
    state: "offline",
  });
  writeFileSync(join(project, "served.mjs"), SERVED);
  assert.deepEqual(JSON.parse(await sh(process.execPath, ["served.mjs"], project)), { module: true, typed: false });
  lap("import conveyor-tasks/client, and the client a node serves");

  assert.ok(existsSync(join(installed, "dashboard", "dist", "index.html")), "the package ships the built dashboard");
  writeFileSync(join(project, "dashboard.mjs"), DASHBOARD);
  assert.deepEqual(JSON.parse(await sh(process.execPath, ["dashboard.mjs"], project)), {
    base: true,
    script: 200,
    type: "text/javascript; charset=utf-8",
  });
  lap("the dashboard, from a node:http server under a prefix");

  // The declarations the package's exports name are enough to type-check the example and the client's import
  // (@types/node aside).
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "nodenext",
        target: "es2024",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
        typeRoots: [join(ROOT, "node_modules", "@types")],
      },
      files: ["example.ts", "encode.ts", "client.ts"],
    }),
  );
  await sh(TSC, ["-p", "."], project);
  lap("tsc on the example");

  // --no: never fetch a package of that name (npm's `conveyor` is someone else's); run the one installed.
  const help = await sh("npx", ["--no", "--", "conveyor", "--help"], project);
  assert.match(help, /^Usage: conveyor <command> \[options\]/);
  lap("npx conveyor --help");
});
