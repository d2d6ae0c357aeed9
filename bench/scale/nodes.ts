/**
 * Scale: the drain with 1, 2 and 3 worker processes on one store. For each system, a fresh store (schema, key
 * prefix) is made and filled with N tasks by this process, then K worker processes (scale/nodes-worker.ts, each with
 * connections of its own, concurrency 50; for the raw loop, K processes each running the claim loop) attach to it
 * and are started at once. The clock runs from the start signal until the store says N are completed (the workers'
 * start counts only say when to start asking, as in the main drain); then every id the workers ran is checked: N
 * distinct, none twice.
 */
import { type ChildProcess, fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { addInBatches, fmtRate, reasonOf, until } from "../lib/harness.ts";
import type { BenchSystem, ChildJob } from "../lib/types.ts";
import type { Curve, ScaleSection, ScaleSettings } from "./types.ts";
import type { WorkerCommand, WorkerMessage } from "./nodes-worker.ts";

/** The raw loop first: every other row is read as a share of it. */
const RAW = "postgres-raw";
const SYSTEMS = [RAW, "conveyor-postgres", "graphile-worker", "pg-boss", "bullmq"];
const PROCESSES = [1, 2, 3];
/** The smoke stops at 2: enough to see the processes attach and share a store, and it keeps CI's scale run short. */
const SMOKE_PROCESSES = [1, 2];
const WORKER = fileURLToPath(new URL("./nodes-worker.ts", import.meta.url));

export type NodesRun = {
  system: string;
  processes: number;
  status: "ok" | "unavailable" | "failed";
  reason?: string;
  n: number;
  seconds?: number;
  perSecond?: number;
  /** Distinct tasks the workers ran, and starts beyond those (a task run twice). */
  distinct?: number;
  duplicates?: number;
  /** Tasks each worker process ran: how evenly they shared the work. */
  perProcess?: number[];
  /** CPU seconds of each worker process, set-up to teardown. */
  cpuSeconds?: number[];
};

export async function measureNodes(settings: ScaleSettings): Promise<ScaleSection> {
  const n = settings.n ?? (settings.smoke ? 600 : 20_000);
  const runId = `s${Date.now().toString(36)}`;
  const counts = settings.smoke ? SMOKE_PROCESSES : PROCESSES;
  const runs: NodesRun[] = [];
  for (const system of SYSTEMS) {
    for (const processes of counts) {
      const run = await drainWith(system, processes, n, `${runId}k${processes}`, settings);
      runs.push(run);
      const outcome = run.status === "ok" ? `${fmtRate(run.perSecond!)}/s` : `${run.status}: ${run.reason}`;
      settings.progress(`nodes ${system} ×${processes}: ${outcome}`);
      if (run.status === "unavailable") break; // the other counts could not be set up either
    }
  }
  return {
    id: "nodes",
    title: "Drain with 1, 2 and 3 worker processes on one store",
    markdown: report(runs, n, counts),
    charts: [
      {
        id: "nodes",
        title: `Drain of ${n.toLocaleString("en")} tasks by ${counts.join(", ")} worker processes on one store`,
        xLabel: "worker processes (concurrency 50 each)",
        yLabel: "tasks/s",
        curves: SYSTEMS.map(
          (system): Curve => ({
            label: system,
            points: runs
              .filter((r) => r.system === system && r.status === "ok")
              .map((r) => ({ x: r.processes, y: Math.round(r.perSecond!) })),
          }),
        ).filter((c) => c.points.length > 0),
      },
    ],
    data: { n, systems: SYSTEMS, processes: counts, runs },
    failures: runs
      .filter((r) => r.status === "failed")
      .map((r) => `nodes ${r.system} ×${r.processes}: ${r.reason ?? "failed"}`),
  };
}

/** One system with K worker processes on a store of its own: fill, start them at once, time until the store is done. */
async function drainWith(
  name: string,
  processes: number,
  n: number,
  runId: string,
  settings: ScaleSettings,
): Promise<NodesRun> {
  const run: NodesRun = { system: name, processes, status: "ok", n };
  const job: ChildJob = {
    system: name,
    n,
    batch: 500,
    latencyCount: 0,
    latencyIntervalMs: 10,
    concurrency: 50,
    idleMs: 250,
    workloads: ["drain"],
    runId,
  };
  // The store's owner: makes it, fills it, asks it how many are completed, drops it.
  let owner: BenchSystem;
  try {
    const url = new URL(`../systems/${name}.ts`, import.meta.url);
    owner = ((await import(url.href)) as { create: (job: ChildJob) => BenchSystem }).create(job);
  } catch (error) {
    return { ...run, status: "unavailable", reason: reasonOf(error) };
  }
  try {
    await owner.setup();
  } catch (error) {
    await owner.teardown();
    return { ...run, status: "unavailable", reason: reasonOf(error) };
  }
  const workers: Worker[] = [];
  try {
    await addInBatches(job, (count) => owner.enqueueBatch(count));
    for (let i = 0; i < processes; i++) workers.push(startWorker(job));
    await until(
      () => workers.every((w) => w.ready || w.problem !== null),
      10,
      60_000,
      () => `${workers.filter((w) => w.ready).length}/${processes} worker processes ready`,
    );
    const unready = workers.find((w) => w.problem !== null);
    if (unready !== undefined)
      return { ...run, status: unready.unavailable ? "unavailable" : "failed", reason: unready.problem! };

    const timeoutMs = 60_000 + n * 10;
    const started = () => workers.reduce((sum, w) => sum + w.started, 0);
    const ticker = setInterval(() => settings.progress(`nodes ${name} ×${processes} ${started()}/${n}…`), 1000);
    const t0 = performance.now();
    try {
      for (const w of workers) w.send({ type: "go" });
      const failedWorker = () => {
        const bad = workers.find((w) => w.problem !== null);
        if (bad !== undefined) throw new Error(bad.problem!);
      };
      if (owner.drainLoop !== undefined) {
        await until(
          () => (failedWorker(), workers.every((w) => w.loopCompleted !== null)),
          2,
          timeoutMs,
          () => `the claim loops completed ${started()}/${n}`,
        );
      } else {
        await until(
          () => (failedWorker(), started() >= n),
          5,
          timeoutMs,
          () => `${started()}/${n} tasks started`,
        );
        let inStore = 0;
        await until(
          async () => (inStore = await owner.completedInStore!()) >= n,
          5,
          timeoutMs,
          () => `the store says ${inStore}/${n} completed`,
        );
      }
    } finally {
      clearInterval(ticker);
    }
    run.seconds = (performance.now() - t0) / 1000;
    run.perSecond = n / run.seconds;

    const results = await Promise.all(workers.map((w) => w.stop()));
    run.cpuSeconds = results.map((r) => r.cpuSeconds);
    if (owner.drainLoop !== undefined) {
      // The claim loop's completion only counts rows it moved from running to completed: none can count twice.
      run.perProcess = workers.map((w) => w.loopCompleted ?? 0);
      run.distinct = run.perProcess.reduce((a, b) => a + b, 0);
      run.duplicates = 0;
    } else {
      run.perProcess = results.map((r) => r.ids.length);
      const distinct = new Set(results.flatMap((r) => r.ids));
      run.distinct = distinct.size;
      run.duplicates = results.reduce((sum, r) => sum + r.calls, 0) - distinct.size;
    }
    if (run.distinct !== n)
      return { ...run, status: "failed", reason: `${run.distinct} distinct tasks ran, expected ${n}` };
    if (run.duplicates > 0) return { ...run, status: "failed", reason: `${run.duplicates} tasks ran more than once` };
    return run;
  } catch (error) {
    return { ...run, status: "failed", reason: reasonOf(error) };
  } finally {
    for (const w of workers) w.kill();
    await owner.teardown();
  }
}

type WorkerResult = Extract<WorkerMessage, { type: "result" }>;
type Worker = {
  ready: boolean;
  started: number;
  loopCompleted: number | null;
  /** Why it cannot go on (set up failed, crashed, its workers threw); null while all is well. */
  problem: string | null;
  unavailable: boolean;
  send: (command: WorkerCommand) => void;
  /** Stops its workers, tears down, and hands back the ids it ran. */
  stop: () => Promise<WorkerResult>;
  kill: () => void;
};

function startWorker(job: ChildJob): Worker {
  const child: ChildProcess = fork(WORKER, [JSON.stringify(job)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let result: WorkerResult | null = null;
  let exited = false;
  const worker: Worker = {
    ready: false,
    started: 0,
    loopCompleted: null,
    problem: null,
    unavailable: false,
    send: (command) => child.send(command),
    async stop() {
      child.send({ type: "stop" } satisfies WorkerCommand);
      await until(
        () => result !== null || exited,
        5,
        30_000,
        () => "a worker process did not stop within 30 s",
      );
      if (result === null) throw new Error("a worker process exited without its result");
      return result;
    },
    kill: () => {
      if (!exited) child.kill("SIGKILL");
    },
  };
  child.on("message", (message: WorkerMessage) => {
    switch (message.type) {
      case "ready":
        worker.ready = true;
        break;
      case "unavailable":
        worker.problem = message.reason;
        worker.unavailable = true;
        break;
      case "progress":
        worker.started = message.started;
        break;
      case "loop-done":
        worker.loopCompleted = message.completed;
        worker.started = message.completed;
        break;
      case "failed":
        worker.problem = message.reason;
        break;
      case "result":
        result = message;
        break;
    }
  });
  child.on("exit", (code, signal) => {
    exited = true;
    if (result === null) worker.problem ??= `a worker process exited (${signal ?? `code ${code}`})`;
  });
  return worker;
}

function report(runs: NodesRun[], n: number, counts: number[]): string {
  const most = counts.at(-1)!;
  const at = (system: string, processes: number) =>
    runs.find((r) => r.system === system && r.processes === processes && r.status === "ok");
  const lines = [
    `${n.toLocaleString("en")} tasks added first, then K worker processes started at once on the same store (each with connections of its own, concurrency 50; for postgres-raw, K processes each running the claim loop with 4 clients); the clock runs from the start signal until the store says all are completed. In brackets: the rate against the same system with 1 process. Share of raw: against postgres-raw with as many processes (for BullMQ, a Redis store, only a yardstick).`,
    "",
    `| system | ${counts.map((k) => `${k} process${k === 1 ? "" : "es"}`).join(" | ")} | share of postgres-raw (${counts.join(" / ")}) | tasks per process (${most}) |`,
    `|---|${counts.map(() => "---|").join("")}---|---|`,
  ];
  for (const system of SYSTEMS) {
    const mine = runs.filter((r) => r.system === system);
    if (mine.length === 0) continue;
    const one = at(system, 1);
    const cells = counts.map((k) => {
      const run = mine.find((r) => r.processes === k);
      if (run === undefined) return "—";
      if (run.status !== "ok") return `${run.status}: ${run.reason ?? ""}`;
      const ratio = k === 1 || one === undefined ? "" : ` (×${(run.perSecond! / one.perSecond!).toFixed(2)})`;
      return `${fmtRate(run.perSecond!)}/s${ratio}`;
    });
    const shares = counts.map((k) => {
      const run = at(system, k);
      const raw = at(RAW, k);
      return run === undefined || raw === undefined ? "—" : `${Math.round((100 * run.perSecond!) / raw.perSecond!)} %`;
    });
    const spread =
      at(system, most)
        ?.perProcess?.map((c) => c.toLocaleString("en"))
        .join(" / ") ?? "—";
    lines.push(`| ${system} | ${cells.join(" | ")} | ${shares.join(" / ")} | ${spread} |`);
  }
  return lines.join("\n");
}
