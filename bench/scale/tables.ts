/**
 * Scale: enqueue, drain and add→start with 0, 100,000 and 1,000,000 finished tasks already in the table, on both of
 * Conveyor's stores. Retention keeps finished tasks for days (taskRetentionMs, 7 days), so a busy install's table
 * holds far more finished rows than live ones, and a table that only grows must not slow the hot path. Each point
 * is a process of its own (scale/tables-child.ts): a fresh store filled by SQL (scale/fill.ts), then the main
 * bench's workloads, unchanged.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { fmtRate } from "../lib/harness.ts";
import type { LatencyFigures, SystemResult } from "../lib/types.ts";
import type { TablesJob, TablesMessage } from "./tables-child.ts";
import type { Curve, ScaleChart, ScaleSection, ScaleSettings } from "./types.ts";

const STORES = ["conveyor-sqlite", "conveyor-postgres"];
const CHILD = fileURLToPath(new URL("./tables-child.ts", import.meta.url));

export type TablesRun = {
  system: string;
  /** Finished tasks in the table before the workloads. */
  size: number;
  status: SystemResult["status"];
  reason?: string;
  fillSeconds: number;
  enqueuePerSecond?: number;
  drainPerSecond?: number;
  duplicates?: number;
  latency?: LatencyFigures;
};

export async function measureTables(settings: ScaleSettings): Promise<ScaleSection> {
  const sizes = settings.smoke ? [0, 2_000] : [0, 100_000, 1_000_000];
  const n = settings.n ?? (settings.smoke ? 300 : 20_000);
  const latencyCount = settings.smoke ? 30 : 300;
  const runId = `t${Date.now().toString(36)}`;
  const runs: TablesRun[] = [];
  for (const system of STORES) {
    for (const size of sizes) {
      settings.progress(`tables ${system} with ${size.toLocaleString("en")} finished tasks`);
      const job: TablesJob = {
        system,
        size,
        n,
        batch: 500,
        latencyCount,
        latencyIntervalMs: 10,
        concurrency: 50,
        idleMs: 250,
        workloads: ["enqueue", "drain", "latency"],
        runId: `${runId}s${size}`,
      };
      const run = await runPoint(job);
      runs.push(run);
      if (run.status === "unavailable") {
        settings.progress(`tables ${system}: unavailable: ${run.reason}`);
        break;
      }
    }
  }
  const curves = (figure: (run: TablesRun) => number | undefined, suffix = ""): Curve[] =>
    STORES.map((system) => ({
      label: `${system}${suffix}`,
      points: runs
        .filter((r) => r.system === system && r.status === "ok" && figure(r) !== undefined)
        .map((r) => ({ x: r.size, y: figure(r)! })),
    })).filter((c) => c.points.length > 0);
  const chart = (id: string, title: string, yLabel: string, lines: Curve[]): ScaleChart => ({
    id: `tables-${id}`,
    title,
    xLabel: "finished tasks already in the table",
    yLabel,
    curves: lines,
    categoricalX: true,
  });
  return {
    id: "tables",
    title: "Enqueue, drain and add→start with finished tasks in the table",
    markdown: report(runs, sizes, n, latencyCount),
    charts: [
      chart(
        "enqueue",
        `Enqueue of ${n.toLocaleString("en")} tasks (batches of 500)`,
        "tasks/s",
        curves((r) => r.enqueuePerSecond),
      ),
      chart(
        "drain",
        `Drain of ${n.toLocaleString("en")} tasks (concurrency 50)`,
        "tasks/s",
        curves((r) => r.drainPerSecond),
      ),
      chart("latency", "add→start to an idle worker", "ms", [
        ...curves((r) => r.latency?.p50, " p50"),
        ...curves((r) => r.latency?.p99, " p99"),
      ]),
    ],
    data: { n, latencyCount, sizes, runs },
    failures: runs.flatMap((r) => {
      const where = `tables ${r.system} ${r.size.toLocaleString("en")}`;
      if (r.status === "failed") return [`${where}: ${r.reason ?? "failed"}`];
      if ((r.duplicates ?? 0) > 0) return [`${where}: ${r.duplicates} tasks ran more than once`];
      return [];
    }),
  };
}

/** One store at one size, in a child process; a crash, a hang or a silent exit becomes a failed point. */
function runPoint(job: TablesJob): Promise<TablesRun> {
  const child = fork(CHILD, [JSON.stringify(job)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  // Filling a million rows takes a few seconds here; the workloads get as long as the main bench gives them.
  const timeoutMs = 120_000 + job.n * 20 + job.size / 10;
  const failed = (reason: string): TablesRun => ({
    system: job.system,
    size: job.size,
    status: "failed",
    reason,
    fillSeconds: 0,
  });
  return new Promise((resolve) => {
    let run: TablesRun | null = null;
    const timer = setTimeout(() => {
      run ??= failed(`no result after ${timeoutMs / 1000} s; killed`);
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("message", ({ result, fillSeconds, fillError }: TablesMessage) => {
      run ??= {
        system: job.system,
        size: job.size,
        status: fillError === undefined ? result.status : "failed",
        ...(fillError !== undefined
          ? { reason: `filling the table: ${fillError}` }
          : result.reason === undefined
            ? {}
            : { reason: result.reason }),
        fillSeconds: Math.round(fillSeconds * 10) / 10,
        ...(result.enqueue === undefined ? {} : { enqueuePerSecond: Math.round(result.enqueue.perSecond) }),
        ...(result.drain === undefined
          ? {}
          : { drainPerSecond: Math.round(result.drain.perSecond), duplicates: result.drain.duplicates }),
        ...(result.latency === undefined ? {} : { latency: result.latency }),
      };
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(run ?? failed(`process exited (${signal ?? `code ${code}`}) without a result`));
    });
  });
}

function report(runs: TablesRun[], sizes: number[], n: number, latencyCount: number): string {
  const lines = [
    `A fresh store for each row, filled before the clock with that many completed tasks (same type and queue, created over the past 5 days, written by SQL; PostgreSQL then \`VACUUM (ANALYZE)\`, as autovacuum would have done to rows days old), then the main bench's workloads: enqueue of ${n.toLocaleString("en")} (batches of 500), their drain (concurrency 50), ${latencyCount} single adds to the idle worker (add→start). In brackets: against the same store with an empty table.`,
    "",
    "| store | finished tasks in table | enqueue | drain | add→start p50 | add→start p99 | filled in |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const system of STORES) {
    const empty = runs.find((r) => r.system === system && r.size === 0 && r.status === "ok");
    for (const size of sizes) {
      const run = runs.find((r) => r.system === system && r.size === size);
      if (run === undefined) continue;
      const rowStart = `| ${system} | ${size.toLocaleString("en")} |`;
      if (run.status !== "ok") {
        lines.push(`${rowStart} ${run.status}: ${run.reason ?? ""} | | | | |`);
        continue;
      }
      const vs = (value: number | undefined, base: number | undefined) =>
        size === 0 || value === undefined || base === undefined || base === 0 ? "" : ` (×${(value / base).toFixed(2)})`;
      const rate = (value: number | undefined, base: number | undefined) =>
        value === undefined ? "—" : `${fmtRate(value)}/s${vs(value, base)}`;
      const ms = (value: number | undefined, base: number | undefined) =>
        value === undefined ? "—" : `${value} ms${vs(value, base)}`;
      lines.push(
        `${rowStart} ${rate(run.enqueuePerSecond, empty?.enqueuePerSecond)} | ${rate(run.drainPerSecond, empty?.drainPerSecond)} | ${ms(run.latency?.p50, empty?.latency?.p50)} | ${ms(run.latency?.p99, empty?.latency?.p99)} | ${size === 0 ? "—" : `${run.fillSeconds} s`} |`,
      );
    }
  }
  return lines.join("\n");
}
