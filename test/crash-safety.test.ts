/**
 * Crash safety on SQLite: real node processes (test/fixtures/crash-node.ts) run tasks on one file and are
 * `kill -9`ed mid-run; a fresh process on the same file finishes the work. Asserted on the store: no task
 * lost, none completed twice, each task in flight at a kill rescued (stall counted, `task.rescued` logged)
 * within the 5 s target. Handlers may run twice (at-least-once), but only the attempts cut short by a kill.
 * A SIGTERM, by contrast, hands unfinished tasks back at once and exits 0 within the grace period.
 *
 * Every wait is on a child's output (or exit), bounded, and fails with what the child said; children still
 * alive when a test ends (failed or not) are killed.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Conveyor, SqliteStore } from "../src/index.ts";
import type { Task, LogEvent, TaskInput } from "../src/index.ts";
import { WatchedProcess, withTimeout } from "./support/watched-process.ts";

const FIXTURE = new URL("./fixtures/crash-node.ts", import.meta.url).pathname;
const LOCK_HOLDER = new URL("./fixtures/hold-write-lock.ts", import.meta.url).pathname;
/** The design's target: a kill -9ed node's tasks run again elsewhere within 5 s. */
const RESCUE_TARGET_MS = 5000;
const HEARTBEAT_MS = 200;
const DEAD_AFTER_BEATS = 3;

// ---- child processes -----------------------------------------------------------------------------------

/**
 * A crash-node child; its plain output lines (`ready <id>`, `status <done> <inflight>`, `lag <ms> <at>`) kept as
 * figures.
 */
class CrashNode extends WatchedProcess {
  nodeId = "";
  readyAt = 0;
  done = 0;
  inflight = 0;
  /** Event-loop stalls the child reported: worst delay so far, and about when. */
  readonly lags: { ms: number; at: number }[] = [];

  constructor(name: string, env: Record<string, string>) {
    super(name, [FIXTURE], { env: { ...process.env, ...env } }, (line) => {
      const [word, a, b] = line.text.split(" ");
      if (word === "ready") {
        this.nodeId = a!;
        this.readyAt = line.at;
      } else if (word === "status") {
        this.done = Number(a);
        this.inflight = Number(b);
      } else if (word === "lag") {
        this.lags.push({ ms: Number(a), at: Number(b) });
      }
    });
  }

  ready(): Promise<void> {
    return this.until("ready", () => this.nodeId !== "", 15_000).then(() => {});
  }

  saw(prefix: string): boolean {
    return this.lines.some((line) => line.text.startsWith(prefix));
  }
}

/** A scratch folder with a database and a side-effect log; children spawned from it die with the test. */
function workspace(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-crash-"));
  const db = join(dir, "conveyor.db");
  const log = join(dir, "side-effects.log");
  const children: CrashNode[] = [];
  t.after(async () => {
    for (const child of children) {
      if (child.alive) {
        child.process.kill("SIGKILL");
        await withTimeout(child.exited, 5000, `${child.name} to die`).catch(() => {});
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const spawnNode = (name: string, env: Record<string, string> = {}) => {
    const child = new CrashNode(name, {
      CRASH_DB: db,
      CRASH_LOG: log,
      CRASH_HEARTBEAT_MS: String(HEARTBEAT_MS),
      CRASH_DEAD_AFTER_BEATS: String(DEAD_AFTER_BEATS),
      ...env,
    });
    children.push(child);
    return child;
  };
  return { dir, db, log, spawnNode };
}

// ---- the store, read from the test process -------------------------------------------------------------

/** Enqueue through the public API, with a node that never starts. */
async function enqueue(db: string, inputs: TaskInput[]): Promise<number[]> {
  const conveyor = new Conveyor({ database: db });
  try {
    const outcomes = await conveyor.enqueueMany(inputs);
    return outcomes.map((o) => o.task.id);
  } finally {
    await conveyor.stop();
  }
}

async function withStore<T>(db: string, read: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore({ path: db });
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

async function allTasks(store: SqliteStore, states?: Task["state"][]): Promise<Task[]> {
  const tasks: Task[] = [];
  for (;;) {
    const page = await store.taskList({
      ...(states ? { states } : {}),
      limit: 1000,
      order: "asc",
      ...(tasks.length ? { after: tasks.at(-1)!.id } : {}),
    });
    tasks.push(...page);
    if (page.length < 1000) return tasks;
  }
}

async function allEvents(store: SqliteStore): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  for (;;) {
    const page = await store.eventList({ after: events.at(-1)?.offset ?? 0, limit: 5000 });
    events.push(...page);
    if (page.length < 5000) return events;
  }
}

type SideEffect = { id: number; attempt: number; pid: number };

function sideEffects(log: string): SideEffect[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, attempt, pid] = line.split(" ").map(Number);
      return { id: id!, attempt: attempt!, pid: pid! };
    });
}

function countBy<T, K>(items: T[], key: (item: T) => K): Map<K, number> {
  const counts = new Map<K, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

type Kill = { child: CrashNode; at: number; running: Task[]; completedBefore: number };

/** Kill -9 `child`, then record what it left `running` (before anything else can touch the store). */
async function killMidRun(db: string, child: CrashNode, total: number): Promise<Kill> {
  const at = await child.kill9();
  const { running, completedBefore } = await withStore(db, async (store) => ({
    running: (await allTasks(store, ["running"])).filter((task) => task.node === child.nodeId),
    completedBefore: (await allTasks(store, ["completed"])).length,
  }));
  assert.ok(running.length > 0, `${child.name} was killed with no task running: the kill was not mid-run`);
  assert.ok(
    completedBefore > 0 && completedBefore < total,
    `${child.name} was killed with ${completedBefore}/${total} completed: not mid-run`,
  );
  return { child, at, running, completedBefore };
}

/**
 * The invariants after a run with kills: every task completed exactly once; exactly the tasks in flight
 * at a kill were rescued, once per kill, within the target; handlers ran twice only for those. Returns
 * numbers for the report.
 */
async function checkAfterCrashes(db: string, log: string, ids: number[], kills: Kill[], children: CrashNode[]) {
  const { tasks, events } = await withStore(db, async (store) => ({
    tasks: await allTasks(store),
    events: await allEvents(store),
  }));
  const byId = new Map(tasks.map((task) => [task.id, task]));

  // None lost: every enqueued task is there and completed; nothing else is.
  assert.equal(tasks.length, ids.length, "task count");
  const notCompleted = tasks.filter((task) => task.state !== "completed");
  assert.deepEqual(
    notCompleted.map((task) => `${task.id}:${task.state}`),
    [],
    "every task completed",
  );

  // None completed twice: one task.completed event per task, naming the attempt that holds the result.
  const completedEvents = events.filter((event) => event.type === "task.completed");
  const completions = countBy(completedEvents, (event) => event.taskId);
  const twice = [...completions].filter(([, n]) => n !== 1);
  assert.deepEqual(twice, [], "tasks with other than exactly one task.completed event");
  assert.equal(completedEvents.length, ids.length, "task.completed events");
  for (const event of completedEvents) {
    const task = byId.get(event.taskId)!;
    assert.equal(
      (event.data as { attempt: number }).attempt,
      task.attempt,
      `task ${task.id}: completed event's attempt`,
    );
    assert.deepEqual(task.result, { id: task.id }, `task ${task.id}: result`);
  }
  assert.equal(events.filter((event) => event.type === "task.failed").length, 0, "no task.failed event");

  // Rescues: exactly the tasks left running by a kill, each once per kill, naming the dead node and attempt.
  const rescued = events.filter((event) => event.type === "task.rescued");
  assert.equal(
    rescued.filter((event) => (event.data as { released?: boolean }).released).length,
    0,
    "no graceful hand-back in a crash run",
  );
  const expectedRescues = kills
    .flatMap((kill) => kill.running.map((task) => `${task.id}@${kill.child.nodeId}#${task.attempt}`))
    .sort();
  const actualRescues = rescued.map(rescueKey).sort();
  const unexpected = actualRescues.filter((r) => !expectedRescues.includes(r));
  const missing = expectedRescues.filter((r) => !actualRescues.includes(r));
  if (unexpected.length > 0 || missing.length > 0) {
    assert.fail(
      `task.rescued events differ from the tasks running at each kill:\n` +
        `  missing rescues: ${missing.length} ${missing.slice(0, 10).join(", ")}\n` +
        `  unexpected rescues: ${unexpected.length}\n${explainRescues(
          rescued.filter((e) => unexpected.includes(rescueKey(e))),
          children,
        )}`,
    );
  }
  const stallsExpected = countBy(
    kills.flatMap((kill) => kill.running),
    (task) => task.id,
  );
  for (const task of tasks) {
    assert.equal(task.stalls, stallsExpected.get(task.id) ?? 0, `task ${task.id}: stalls`);
    if (task.stalls > 0) assert.equal(task.error?.name, "StalledError", `task ${task.id}: last error`);
  }

  // Rescue time: from each kill to the rescue of its tasks (the rescuer runs on the next live node).
  const rescueDelays = kills.map((kill) => {
    const times = rescued
      .filter((event) => (event.data as { node: string }).node === kill.child.nodeId)
      .map((event) => event.at.getTime() - kill.at);
    return {
      node: kill.child.name,
      tasks: kill.running.length,
      firstMs: Math.min(...times),
      lastMs: Math.max(...times),
    };
  });
  for (const delay of rescueDelays) {
    assert.ok(
      delay.lastMs <= RESCUE_TARGET_MS,
      `tasks of ${delay.node} rescued ${delay.lastMs} ms after its kill (target ${RESCUE_TARGET_MS} ms)`,
    );
  }
  // ...and from each kill to the moment its last rescued task completed again.
  const rerunDelays = kills.map((kill) =>
    Math.max(...kill.running.map((task) => byId.get(task.id)!.finishedAt!.getTime() - kill.at)),
  );

  // Side effects: every task ran to its side effect at least once, the completing attempt included; an
  // attempt runs it at most once; and only tasks in flight at a kill ran it more than once.
  const effects = sideEffects(log);
  const perAttempt = countBy(effects, (e) => `${e.id}#${e.attempt}`);
  assert.deepEqual(
    [...perAttempt].filter(([, n]) => n > 1),
    [],
    "an attempt wrote its side effect twice",
  );
  for (const task of tasks) {
    assert.ok(
      perAttempt.has(`${task.id}#${task.attempt}`),
      `task ${task.id}: no side effect from its completing attempt ${task.attempt}`,
    );
  }
  const perTask = countBy(effects, (e) => e.id);
  assert.equal(perTask.size, ids.length, "tasks with a side effect");
  const inFlight = new Set(kills.flatMap((kill) => kill.running.map((task) => task.id)));
  const duplicated = [...perTask].filter(([, n]) => n > 1).map(([id]) => id);
  const unexplained = duplicated.filter((id) => !inFlight.has(id));
  assert.deepEqual(unexplained, [], "tasks whose side effect ran twice without being in flight at a kill");

  return {
    tasks: tasks.length,
    rescued: rescued.length,
    rescuedTasks: inFlight.size,
    duplicatedSideEffects: duplicated.length,
    sideEffectLines: effects.length,
    rescueDelays,
    rerunDelays,
  };
}

function worstLags(children: CrashNode[]): string {
  return `worst event-loop lag: ${children.map((c) => `${c.name} ${c.lags.at(-1)?.ms ?? "<100"} ms`).join(", ")}`;
}

function rescueKey(event: LogEvent): string {
  const data = event.data as { node: string; attempt: number };
  return `${event.taskId}@${data.node}#${data.attempt}`;
}

/** For a failure message: when rescues happened relative to the life of the node they were taken from. */
function explainRescues(events: LogEvent[], children: CrashNode[]): string {
  const byNode = new Map<string, LogEvent[]>();
  for (const event of events) {
    const node = (event.data as { node: string }).node;
    byNode.set(node, [...(byNode.get(node) ?? []), event]);
  }
  return [...byNode]
    .map(([nodeId, list]) => {
      const child = children.find((c) => c.nodeId === nodeId);
      const times = [...new Set(list.map((e) => e.at.getTime()))];
      if (child === undefined) return `    ${list.length} from unknown node ${nodeId}`;
      const rel = (at: number) =>
        `${at - child.readyAt} ms after ${child.name} was ready, ` +
        (child.killedAt === null ? `${child.name} never killed` : `${at - child.killedAt} ms after its kill`);
      return (
        `    ${list.length} tasks (ids ${list
          .slice(0, 5)
          .map((e) => e.taskId)
          .join(",")}...) taken from ${child.name} (${nodeId}) ` +
        `in ${times.length} rescue(s): ${times.map(rel).join("; ")}${child.killedAt !== null && times.some((t) => t < child.killedAt!) ? " — WHILE IT WAS ALIVE" : ""}\n` +
        `    ${child.name}'s event-loop lag reports: ${child.lags.map((l) => `${l.ms} ms @ ${l.at - child.readyAt} ms after ready`).join(", ") || "none over 100 ms"}`
      );
    })
    .join("\n");
}

function workInputs(n: number, options: Partial<TaskInput> = {}): TaskInput[] {
  return Array.from({ length: n }, (_, i) => ({ type: "crash.work", data: { n: i }, ...options }));
}

// ---- the scenarios -------------------------------------------------------------------------------------

test("kill -9 mid-run: a new process on the same file finishes every task; none lost, none completed twice", {
  timeout: 60_000,
}, async (t) => {
  const N = 2000;
  const { db, log, spawnNode } = workspace(t);
  const started = Date.now();
  const ids = await enqueue(db, workInputs(N));
  assert.equal(new Set(ids).size, N);

  const a = spawnNode("A");
  await a.ready();
  await a.until(`A to run ${N / 4} tasks`, () => a.done >= N / 4, 20_000);
  const kill = await killMidRun(db, a, N);

  const b = spawnNode("B");
  await b.ready();
  await b.until("B to drain the store", () => b.saw("drained"), 25_000);
  assert.ok(b.saw(`drained ${N} 0`), `B drained with ${b.lines.find((l) => l.text.startsWith("drained"))?.text}`);
  b.process.kill("SIGTERM");
  assert.deepEqual(await withTimeout(b.exited, 5000, "B to exit after SIGTERM"), { code: 0, signal: null });

  const report = await checkAfterCrashes(db, log, ids, [kill], [a, b]);
  const rescue = report.rescueDelays[0]!;
  t.diagnostic(
    `N=${N}; A killed after ${kill.completedBefore} completions with ${kill.running.length} running; ` +
      `B ready ${b.readyAt - kill.at} ms after the kill; rescue ${rescue.firstMs}-${rescue.lastMs} ms after the kill ` +
      `(${rescue.firstMs - (b.readyAt - kill.at)} ms after B was ready); rescued tasks done again ${report.rerunDelays[0]} ms after the kill; ` +
      `side effects run twice: ${report.duplicatedSideEffects}/${report.rescuedTasks} rescued tasks; total ${Date.now() - started} ms; ${worstLags([a, b])}`,
  );
});

test("kill -9 three times during a run, then finish: none lost, none completed twice", {
  timeout: 60_000,
}, async (t) => {
  const N = 2000;
  const { db, log, spawnNode } = workspace(t);
  const started = Date.now();
  // Enough attempts and stalls that no task can fail even if it is in flight at every kill.
  const ids = await enqueue(db, workInputs(N, { maxAttempts: 10 }));
  const kills: Kill[] = [];
  for (const name of ["A", "B", "C"]) {
    const child = spawnNode(name, { CRASH_MAX_STALLS: "5" });
    await child.ready();
    await child.until(`${name} to run ${N / 5} tasks`, () => child.done >= N / 5, 20_000);
    kills.push(await killMidRun(db, child, N));
  }
  const d = spawnNode("D", { CRASH_MAX_STALLS: "5" });
  await d.ready();
  await d.until("D to drain the store", () => d.saw("drained"), 25_000);
  assert.ok(d.saw(`drained ${N} 0`), `D drained with ${d.lines.find((l) => l.text.startsWith("drained"))?.text}`);
  d.process.kill("SIGTERM");
  assert.deepEqual(await withTimeout(d.exited, 5000, "D to exit after SIGTERM"), { code: 0, signal: null });

  const report = await checkAfterCrashes(db, log, ids, kills, [...kills.map((k) => k.child), d]);
  t.diagnostic(
    `N=${N}; kills=${kills.length}; running at each kill: ${kills.map((k) => k.running.length).join("/")}; ` +
      `completed at each kill: ${kills.map((k) => k.completedBefore).join("/")}; rescue events: ${report.rescued} ` +
      `(${report.rescuedTasks} distinct tasks); rescue after each kill (first-last ms): ` +
      `${report.rescueDelays.map((d) => `${d.firstMs}-${d.lastMs}`).join(", ")}; re-run done after: ${report.rerunDelays.join("/")} ms; ` +
      `side effects run twice: ${report.duplicatedSideEffects}; total ${Date.now() - started} ms; ${worstLags([...kills.map((k) => k.child), d])}`,
  );
});

test("SIGTERM mid-run: exits 0 within the grace period and hands unfinished tasks back at once", {
  timeout: 30_000,
}, async (t) => {
  const GRACE_MS = 1000;
  const { db, log, spawnNode } = workspace(t);
  // Four tasks that finish within the grace period, four that would run for a minute.
  const shortIds = await enqueue(
    db,
    Array.from({ length: 4 }, () => ({ type: "crash.work", data: { ms: 200 } })),
  );
  const longIds = await enqueue(
    db,
    Array.from({ length: 4 }, () => ({ type: "crash.work", data: { ms: 60_000 } })),
  );
  const env = { CRASH_CONCURRENCY: "8", CRASH_SHUTDOWN_GRACE_MS: String(GRACE_MS) };

  const a = spawnNode("A", env);
  await a.ready();
  await a.until("A to run all 8 tasks", () => a.inflight === 8, 10_000);
  const termAt = Date.now();
  a.process.kill("SIGTERM");
  const exit = await withTimeout(a.exited, GRACE_MS + 5000, "A to exit after SIGTERM");
  const exitMs = Date.now() - termAt;
  assert.deepEqual(exit, { code: 0, signal: null }, `A's exit${a.stderr ? `; stderr: ${a.stderr}` : ""}`);
  assert.ok(a.saw("stopped"), "A reported its stop");
  assert.ok(exitMs < GRACE_MS + 2000, `A took ${exitMs} ms to exit after SIGTERM (grace ${GRACE_MS} ms)`);

  const { tasks, events, nodes } = await withStore(db, async (store) => ({
    tasks: await allTasks(store),
    events: await allEvents(store),
    nodes: await store.nodeList(),
  }));
  const byId = new Map(tasks.map((task) => [task.id, task]));
  for (const id of shortIds) {
    const task = byId.get(id)!;
    assert.equal(task.state, "completed", `short task ${id} finished within the grace period`);
  }
  for (const id of longIds) {
    const task = byId.get(id)!;
    assert.equal(task.state, "queued", `long task ${id} handed back`);
    assert.equal(task.stalls, 0, `long task ${id}: a hand-back is not a stall`);
    assert.equal(task.attempt, 1, `long task ${id}: attempt`);
    const released = events.filter((e) => e.taskId === id && e.type === "task.rescued");
    assert.equal(released.length, 1, `long task ${id}: one hand-back event`);
    assert.equal((released[0]!.data as { released?: boolean }).released, true);
    assert.ok(
      released[0]!.at.getTime() - termAt < GRACE_MS + 1000,
      `long task ${id} handed back ${released[0]!.at.getTime() - termAt} ms after SIGTERM`,
    );
  }
  assert.equal(tasks.filter((task) => task.state === "running").length, 0, "nothing left running");
  assert.equal(nodes.filter((node) => node.id === a.nodeId).length, 0, "A left the cluster");
  assert.deepEqual(
    sideEffects(log)
      .map((e) => e.id)
      .sort((x, y) => x - y),
    shortIds,
    "only the short tasks ran to their side effect",
  );

  // The handed-back tasks are claimable at once: a new node runs them without waiting for any rescuer.
  const b = spawnNode("B", env);
  await b.ready();
  await b.until("B to run the 4 handed-back tasks", () => b.inflight === 4, 5000);
  const claimMs = Date.now() - b.readyAt;
  b.process.kill("SIGTERM");
  assert.deepEqual(await withTimeout(b.exited, GRACE_MS + 5000, "B to exit after SIGTERM"), { code: 0, signal: null });
  const again = await withStore(db, (store) => allTasks(store));
  for (const id of longIds) {
    const task = again.find((x) => x.id === id)!;
    assert.equal(task.state, "queued", `long task ${id} handed back again by B`);
    assert.equal(task.attempt, 2, `long task ${id}: B ran attempt 2`);
  }
  t.diagnostic(
    `SIGTERM → exit 0 in ${exitMs} ms (grace ${GRACE_MS} ms); 4 completed, 4 handed back; B claimed them ${claimMs} ms after it was ready`,
  );
});

test("a live node does not rescue its own running tasks after another process held the write lock", {
  timeout: 30_000,
}, async (t) => {
  // A heartbeat waits for the SQLite write lock like any write. Another process's long transaction (well
  // under busy_timeout) must not make the node that is alive and running its tasks look dead to itself:
  // nothing died, so nothing may be rescued, stalled or run twice.
  const HOLD_MS = 1500; // > deadAfterBeats × heartbeatIntervalMs = 600 ms, < busy_timeout = 5000 ms
  const { db, log, spawnNode } = workspace(t);
  const ids = await enqueue(
    db,
    Array.from({ length: 4 }, () => ({ type: "crash.work", data: { ms: 3000 } })),
  );
  const a = spawnNode("A", { CRASH_CONCURRENCY: "4" });
  await a.ready();
  await a.until("A to run its 4 tasks", () => a.inflight === 4, 10_000);

  const holder = spawn(process.execPath, [LOCK_HOLDER, db, String(HOLD_MS)], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => void holder.kill("SIGKILL"));
  let holderOut = "";
  holder.stdout.setEncoding("utf8").on("data", (chunk: string) => (holderOut += chunk));
  holder.stderr.setEncoding("utf8").on("data", (chunk: string) => (holderOut += chunk));
  const held = await withTimeout(
    new Promise<number | null>((resolve) => holder.once("exit", resolve)),
    HOLD_MS + 10_000,
    "the lock holder",
  );
  assert.equal(held, 0, `lock holder: ${holderOut}`);
  assert.match(holderOut, /released/);

  await a.until("A to drain the store", () => a.saw("drained"), 15_000);
  a.process.kill("SIGTERM");
  assert.deepEqual(await withTimeout(a.exited, 5000, "A to exit after SIGTERM"), { code: 0, signal: null });

  const { tasks, events } = await withStore(db, async (store) => ({
    tasks: await allTasks(store),
    events: await allEvents(store),
  }));
  const rescued = events.filter((e) => e.type === "task.rescued");
  assert.deepEqual(
    rescued.map(
      (e) =>
        `task ${e.taskId} rescued from ${(e.data as { node: string }).node === a.nodeId ? "A itself" : "?"}: ${(e.data as { error?: string }).error}`,
    ),
    [],
    `A (${a.nodeId}), alive all along, rescued its own running tasks once the ${HOLD_MS} ms write lock was released`,
  );
  for (const task of tasks) {
    assert.equal(task.state, "completed", `task ${task.id}`);
    assert.equal(task.attempt, 1, `task ${task.id}: attempt`);
    assert.equal(task.stalls, 0, `task ${task.id}: stalls`);
  }
  assert.deepEqual(
    sideEffects(log)
      .map((e) => e.id)
      .sort((x, y) => x - y),
    ids,
    "each task's side effect ran once",
  );
});
