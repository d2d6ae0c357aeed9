/**
 * A rolling upgrade (docs/upgrades.md): a node of the previous release and a node of this one share one PostgreSQL
 * schema while the new one migrates it; both keep working, nothing is lost, nothing runs twice.
 *
 * "The previous release" is the code just before the newest migration was added (the parent of the commit that
 * added it; HEAD when that migration is not committed yet), exported with `git archive` into a temporary folder
 * that borrows this checkout's node_modules. So the old node truly lacks at least one migration, and meets a
 * schema newer than itself. The test needs the repository's history: without it (no git, a shallow clone) it fails
 * under CI=true and is skipped loudly otherwise.
 *
 * The run: the old node starts on a fresh schema (migrating it to what it knows) and drains a stream of tasks added
 * through its HTTP API; the new node starts on the same schema (applying the missing migrations) while the old one
 * keeps working; tasks are added through both; the old node is stopped with SIGTERM; the new one drains the rest.
 * Every task must complete exactly once (a side-effect log), each node must complete tasks after the migration, the
 * ledger must hold every migration once, and neither node may log an error.
 */
import assert from "node:assert/strict";
import { execFileSync, execSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import pg from "pg";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "../support/postgres.ts";
import { WatchedProcess, withTimeout, type Line } from "../support/watched-process.ts";
import { eventually, freePort, pause } from "./harness.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const MIGRATIONS = "src/store/postgres/migrations";
const HANDLERS = join(REPO, "test/fixtures/upgrade-handlers.ts");
/** Explicit on both nodes, so that neither release's defaults matter; a node silent for 2 s is dead. */
const HEARTBEAT_MS = 500;
const DEAD_AFTER_BEATS = 4;
/** How long upgrade.work takes. */
const WORK_MS = 20;
/** Tasks each node completes in a phase before the test moves on. */
const ENOUGH = 15;

/** A node process of either release: its log lines, its id and port, and its HTTP API. */
class UpgradeNode extends WatchedProcess {
  readonly url: string;
  nodeId = "";
  readyAt = 0;

  constructor(name: string, root: string, port: number, schema: string, sideEffects: string) {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env))
      if (value !== undefined && !key.startsWith("CONVEYOR_")) env[key] = value;
    Object.assign(env, { CONVEYOR_LOG_LEVEL: "info", UPGRADE_NODE: name, UPGRADE_SIDE_EFFECTS: sideEffects });
    const args = [
      join(root, "src/cli/main.ts"),
      "start",
      ...["--database", postgresUrl(), "--schema", schema, "--port", String(port), "--host", "127.0.0.1"],
      ...["--handlers", HANDLERS, "--concurrency", "4", "--name", name],
      ...["--heartbeat-ms", String(HEARTBEAT_MS), "--dead-after", String(DEAD_AFTER_BEATS), "--grace-ms", "5000"],
    ];
    super(name, args, { cwd: root, env }, (line) => {
      const msg = line.json?.msg;
      const listening =
        typeof msg === "string" ? /^conveyor node .* \((node-[0-9a-f]+)\) on .* listening on /.exec(msg) : null;
      if (listening !== null) {
        this.nodeId = listening[1]!;
        this.readyAt = line.at;
      }
    });
    this.url = `http://127.0.0.1:${port}`;
  }

  ready(): Promise<void> {
    return this.until("the HTTP server to listen", () => this.nodeId !== "", 30_000).then(() => {});
  }

  /** Its pino lines at `level` or above (40 warn, 50 error, 60 fatal). */
  logged(level: number): Line[] {
    return this.lines.filter((l) => typeof l.json?.level === "number" && l.json.level >= level);
  }

  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).catch((error: unknown) => {
      throw new Error(`${method} ${path} on ${this.name}: ${String(error)}${this.tail()}`);
    });
    const text = await response.text();
    return { status: response.status, body: (text === "" ? null : JSON.parse(text)) as T };
  }
}

/**
 * The commit whose tree is "the previous release", and the migrations it lacks; null (the test skipped) when the
 * history is not there, which fails under CI=true.
 */
function previousRelease(t: TestContext): { commit: string; lacks: string[] } | null {
  const newest = readdirSync(join(REPO, MIGRATIONS))
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .sort()
    .at(-1)!;
  const git = (...args: string[]) => execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
  let commit: string;
  try {
    if (git("rev-parse", "--is-shallow-repository") === "true") throw new Error("the clone is shallow");
    // The commit that added the newest migration (not the last one that touched it: a later edit of its comment
    // would make a base that has it); HEAD when it is not committed yet.
    const added = git("log", "--diff-filter=A", "--format=%H", "--", `${MIGRATIONS}/${newest}`).split("\n").at(-1);
    commit = added ? git("rev-parse", `${added}^`) : git("rev-parse", "HEAD");
  } catch (error) {
    const why = `the rolling-upgrade test needs the repository's git history (${String(error).split("\n")[0]})`;
    if (process.env.CI === "true") throw new Error(`${why}; CI=true requires it: clone with full history`);
    console.warn(`\n!!! ${why}: skipping "${t.name}". !!!\n`);
    t.skip(why);
    return null;
  }
  const old = new Set(
    git("ls-tree", "--name-only", `${commit}:${MIGRATIONS}`)
      .split("\n")
      .map((file) => file.replace(/\.sql$/, "")),
  );
  const lacks = readdirSync(join(REPO, MIGRATIONS))
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .map((file) => file.replace(/\.sql$/, ""))
    .filter((name) => !old.has(name));
  return { commit, lacks };
}

test("rolling upgrade: a node of the previous release keeps working beside a new node that migrates the schema", async (t) => {
  if (!(await requirePostgres(t))) return;
  const release = previousRelease(t);
  if (release === null) return;
  assert.ok(release.lacks.length > 0, "the previous release lacks at least one migration");

  const dir = mkdtempSync(join(tmpdir(), "conveyor-upgrade-"));
  const oldRoot = join(dir, "previous");
  const sideEffects = join(dir, "side-effects.log");
  const schema = freshSchema("upgrade");
  const nodes: UpgradeNode[] = [];
  const client = new pg.Client({ connectionString: postgresUrl() });
  let producing = true;
  t.after(async () => {
    producing = false;
    for (const node of nodes) if (node.alive) node.process.kill("SIGKILL");
    await Promise.all(nodes.map((node) => withTimeout(node.exited, 5000, `${node.name} to die`).catch(() => {})));
    await client.end().catch(() => {});
    await dropSchema(schema).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  execSync(`mkdir ${JSON.stringify(oldRoot)} && git archive ${release.commit} | tar -x -C ${JSON.stringify(oldRoot)}`, {
    cwd: REPO,
  });
  // The previous release runs on this checkout's dependencies (a release adds dependencies more often than it
  // changes one; a test of a release whose dependencies differ would install its own).
  symlinkSync(join(REPO, "node_modules"), join(oldRoot, "node_modules"));
  await client.connect();
  const ledger = async () =>
    (await client.query<{ name: string; applied_at: Date }>(`SELECT name, applied_at FROM "${schema}".migrations`))
      .rows;

  // ---- the old node alone ----
  const oldNode = new UpgradeNode("old", oldRoot, await freePort(), schema, sideEffects);
  nodes.push(oldNode);
  await oldNode.ready();
  const before = (await ledger()).map((row) => row.name);
  for (const name of release.lacks) assert.ok(!before.includes(name), `the old node does not know ${name}`);

  // Tasks go in through the nodes listed in `targets`, five at a time, one batch after another, until stopped.
  const added = new Map<number, string>(); // seq → the node that took it
  const refused: string[] = [];
  let targets = [oldNode];
  let seq = 0;
  let rounds = 0;
  const producer = (async () => {
    for (let round = 0; producing; round++, rounds++) {
      const node = targets[round % targets.length]!;
      const batch = Array.from({ length: 5 }, () => ++seq);
      const tasks = batch.map((n) => ({ type: "upgrade.work", data: { seq: n, ms: WORK_MS } }));
      try {
        const { status, body } = await node.api("POST", "/api/tasks/bulk", { tasks });
        if (status === 201) for (const n of batch) added.set(n, node.name);
        else refused.push(`${node.name} ${status} ${JSON.stringify(body).slice(0, 300)}`);
      } catch (error) {
        refused.push(String(error).slice(0, 300));
      }
      await pause(30);
    }
  })();
  const done = () =>
    (existsSync(sideEffects) ? readFileSync(sideEffects, "utf8") : "")
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [s, id, attempt, node, at] = line.split(" ");
        return { seq: Number(s), id: Number(id), attempt: Number(attempt), node: node!, at: Number(at) };
      });
  const completedBy = (name: string, after = 0) => done().filter((e) => e.node === name && e.at > after).length;
  // A wait that times out says what went wrong: batches refused, errors the nodes logged.
  const explained = <T>(wait: Promise<T>) =>
    wait.catch((error: Error) => {
      const errors = nodes.flatMap((node) => node.logged(50).map((l) => `${node.name}: ${l.text.slice(0, 500)}`));
      throw new Error(
        `${error.message}\n  refused batches (${refused.length}): ${refused.slice(0, 3).join("\n    ")}` +
          `\n  errors logged (${errors.length}): ${errors.slice(0, 5).join("\n    ")}`,
      );
    });
  await explained(
    eventually("the old node to complete tasks", 15_000, async () => (completedBy("old") >= ENOUGH ? true : undefined)),
  );

  // ---- the new node joins and migrates, the old one keeps working ----
  const newNode = new UpgradeNode("new", REPO, await freePort(), schema, sideEffects);
  nodes.push(newNode);
  await newNode.ready();
  const migratedAt = newNode.readyAt;
  const after = await ledger();
  const names = after.map((row) => row.name);
  assert.equal(new Set(names).size, names.length, "each migration is in the ledger once");
  for (const name of release.lacks) assert.ok(names.includes(name), `the new node applied ${name}`);
  targets = [oldNode, newNode];
  await explained(
    eventually("both nodes to complete tasks on the migrated schema", 15_000, async () =>
      completedBy("old", migratedAt) >= ENOUGH && completedBy("new", migratedAt) >= ENOUGH ? true : undefined,
    ),
  );
  // The old node's reads work on the new schema too (the task list, the cluster view).
  for (const node of [oldNode, newNode]) {
    for (const path of ["/api/tasks?state=running", "/api/tasks?type=upgrade.work", "/api/nodes", "/api/queues"]) {
      const { status, body } = await node.api("GET", path);
      assert.equal(status, 200, `GET ${path} on ${node.name}: ${JSON.stringify(body)}`);
    }
  }

  // ---- the old node leaves gracefully; the new one drains the rest ----
  targets = [newNode];
  const from = rounds;
  await eventually("a batch through the new node alone", 5000, async () => (rounds >= from + 2 ? true : undefined), 10);
  oldNode.process.kill("SIGTERM");
  const oldExit = await withTimeout(oldNode.exited, 15_000, "the old node to stop");
  assert.deepEqual(oldExit, { code: 0, signal: null }, `the old node stops cleanly${oldNode.tail()}`);
  await pause(300);
  producing = false;
  await producer;

  await explained(
    eventually("every task to complete", 20_000, async () => {
      const { rows } = await client.query<{ state: string; n: string }>(
        `SELECT state, count(*) AS n FROM "${schema}".tasks WHERE type = 'upgrade.work' GROUP BY state`,
      );
      const counts = Object.fromEntries(rows.map((row) => [row.state, Number(row.n)]));
      return counts.completed === added.size && rows.length === 1 ? counts : undefined;
    }),
  );

  assert.deepEqual(refused, [], "every batch was taken");
  const effects = done();
  const runs = new Map<number, number>();
  for (const e of effects) runs.set(e.seq, (runs.get(e.seq) ?? 0) + 1);
  const twice = [...runs].filter(([, n]) => n > 1).map(([s]) => s);
  const lost = [...added.keys()].filter((s) => !runs.has(s));
  assert.deepEqual(twice, [], "no task ran twice");
  assert.deepEqual(lost, [], "no task was lost");
  assert.equal(effects.length, added.size);
  const ledgerAtEnd = (await ledger()).map((row) => row.name).sort();
  assert.deepEqual(ledgerAtEnd, [...names].sort(), "nothing migrated again");
  for (const node of [oldNode, newNode])
    assert.deepEqual(
      node.logged(50).map((l) => l.text),
      [],
      `${node.name} logged no error`,
    );
  const warnings = [...oldNode.logged(40), ...newNode.logged(40)].filter((l) => (l.json!.level as number) < 50);
  const through = (name: string) => [...added.values()].filter((n) => n === name).length;
  t.diagnostic(
    `previous release ${release.commit.slice(0, 10)} (lacks ${release.lacks.join(", ")}); ${added.size} tasks ` +
      `(added through old ${through("old")}, new ${through("new")}); completed by old ${completedBy("old")} ` +
      `(${completedBy("old", migratedAt)} after the migration), by new ${completedBy("new")}; ` +
      `${warnings.length} warning(s)${warnings.length ? `: ${warnings.map((w) => w.json!.msg).join(" | ")}` : ""}`,
  );
});
