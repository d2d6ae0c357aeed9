/**
 * Scale: 10 producers adding single tasks over HTTP, against one `conveyor start` node on PostgreSQL, then two on
 * the same schema (5 producers each), and one on SQLite for reference. Each producer POSTs /api/tasks, waits for
 * the answer and sends the next, for 20 s per set-up (smoke: 2 s); the nodes run the tasks meanwhile (a no-op).
 * Afterwards the store must hold exactly the tasks answered 201, and the nodes must complete them all.
 */
import { fileURLToPath } from "node:url";
import { type CliNode, startCliNode } from "../lib/cli-node.ts";
import type { EndpointStats } from "../load/latency.ts";
import { LOAD_TASK_TYPE } from "../load/handlers.ts";
import { type CpuSpent, cpuSince, markCpu } from "./http-cpu.ts";
import { driveProducers } from "./http-drive.ts";
import { STORE_LABEL, type StoreKind, taskCounts, totalOf, waitForCounts, withFreshStore } from "./http-store.ts";
import type { Curve, ScaleSection, ScaleSettings } from "./types.ts";

const PRODUCERS = 10;
/** The load bench's no-op task type: the nodes drain what the producers add, so the table does not just grow. */
const HANDLERS = fileURLToPath(new URL("../load/handlers.ts", import.meta.url));
const SETUPS: { store: StoreKind; nodes: number }[] = [
  { store: "postgres", nodes: 1 },
  { store: "postgres", nodes: 2 },
  { store: "sqlite", nodes: 1 },
];

export type HttpProducersResult = {
  store: StoreKind;
  nodes: number;
  seconds: number;
  adds: EndpointStats;
  /** Tasks the store held once the producers stopped, against adds.ok. */
  stored: number;
  completed: number;
  /** From the producers' stop until the store said every task answered 201 was completed. */
  drainSeconds: number;
  /** CPU seconds while the producers ran (servers: PostgreSQL and Redis, null off Linux). */
  cpu: CpuSpent;
  problems: string[];
};

export async function measureHttpProducers(settings: ScaleSettings): Promise<ScaleSection> {
  const seconds = settings.smoke ? 2 : 20;
  const results: HttpProducersResult[] = [];
  for (const setup of SETUPS) {
    const label = `${setup.store} ×${setup.nodes}`;
    try {
      results.push(await runSetup(setup.store, setup.nodes, seconds, settings, label));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      settings.progress(`http-producers ${label}: FAILED: ${message}`);
      results.push({
        ...setup,
        seconds: 0,
        adds: emptyStats(),
        stored: 0,
        completed: 0,
        drainSeconds: 0,
        cpu: { nodes: 0, servers: null, producers: 0 },
        problems: [message],
      });
    }
  }
  return {
    id: "http-producers",
    title: "HTTP producers",
    markdown: report(results, seconds),
    charts: charts(results),
    data: { producers: PRODUCERS, seconds, results },
    failures: results.flatMap((r) => r.problems.map((p) => `http-producers ${r.store} ×${r.nodes}: ${p}`)),
  };
}

async function runSetup(
  store: StoreKind,
  count: number,
  seconds: number,
  settings: ScaleSettings,
  label: string,
): Promise<HttpProducersResult> {
  return withFreshStore(store, `http_${store}_${count}`, async (place) => {
    const nodes: CliNode[] = [];
    try {
      // One after another: the first migrates the schema, the second finds it ready.
      for (let i = 0; i < count; i++)
        nodes.push(await startCliNode({ name: `scale-http-${store}-${i + 1}`, ...place, handlers: HANDLERS }));
      const pids = nodes.map((node) => node.process.pid!);
      const cpuBefore = markCpu(pids);
      const { recorder, seconds: measured } = await driveProducers({
        nodes,
        producers: PRODUCERS,
        seconds,
        taskType: LOAD_TASK_TYPE,
        tick: (elapsed, answered) =>
          settings.progress(`http-producers ${label} ${elapsed}/${seconds} s, ${answered} added…`),
      });
      const cpu = cpuSince(cpuBefore, pids);
      const adds = recorder.stats(measured);
      const stored = totalOf(await taskCounts(nodes[0]!.url));
      const drainStarted = performance.now();
      // Generous: the nodes drain while the producers add, so what is left is a backlog of seconds at most.
      const drained = await waitForCounts(
        nodes[0]!.url,
        (c) => (c.completed ?? 0) + (c.failed ?? 0) >= adds.ok,
        30_000 + adds.ok * 5,
      );
      const drainSeconds = Math.round((performance.now() - drainStarted) / 100) / 10;
      const completed = drained.counts.completed ?? 0;
      const problems: string[] = [];
      if (recorder.errorCount > 0)
        problems.push(`${recorder.errorCount} adds failed: ${JSON.stringify(recorder.errors)}`);
      if (stored !== adds.ok) problems.push(`the store holds ${stored} tasks; ${adds.ok} adds were answered 201`);
      if (completed !== adds.ok)
        problems.push(`${completed} of ${adds.ok} tasks completed (${JSON.stringify(drained.counts)})`);
      settings.progress(
        `http-producers ${label}: ${Math.round(adds.perSecond)} tasks/s, p99 ${adds.p99Ms} ms; ${completed}/${adds.ok} completed`,
      );
      return { store, nodes: count, seconds: measured, adds, stored, completed, drainSeconds, cpu, problems };
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
    }
  });
}

function emptyStats(): EndpointStats {
  return { requests: 0, ok: 0, perSecond: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, errors: {} };
}

function report(results: HttpProducersResult[], seconds: number): string {
  const n = (x: number) => x.toLocaleString("en", { maximumFractionDigits: x < 10 ? 1 : 0 });
  const lines = [
    `${PRODUCERS} producers in one process, each adding single tasks (POST /api/tasks) one after another for ${seconds} s per set-up, dealt out in turn between the nodes; \`conveyor start\` nodes running the tasks meanwhile (a no-op). Latency from the call to the end of the answer, on the producers' side.`,
    "",
    "| store | nodes | tasks/s | p50 ms | p99 ms | max ms | errors | stored / answered 201 | completed | drained after (s) |",
    "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
  ];
  for (const r of results) {
    if (r.adds.requests === 0) {
      lines.push(
        `| ${STORE_LABEL[r.store]} | ${r.nodes} | — | — | — | — | failed: ${r.problems.join("; ")} | — | — | — |`,
      );
      continue;
    }
    const errors = Object.entries(r.adds.errors).map(([k, v]) => `${v} × ${k}`);
    lines.push(
      `| ${STORE_LABEL[r.store]} | ${r.nodes} | ${n(r.adds.perSecond)} | ${n(r.adds.p50Ms)} | ${n(r.adds.p99Ms)} | ${n(r.adds.maxMs)} | ${errors.join(", ") || "0"} | ${n(r.stored)} / ${n(r.adds.ok)} | ${n(r.completed)} | ${r.drainSeconds} |`,
    );
  }
  lines.push(
    "",
    "CPU while the producers ran, per task added (ms): the nodes' processes, PostgreSQL's (every backend on the machine, so another user's queries count too) and the producers' process; and all three together in cores busy.",
    "",
    "| store | nodes | nodes ms/task | PostgreSQL ms/task | producers ms/task | cores busy |",
    "|---|---:|---:|---:|---:|---:|",
  );
  for (const r of results) {
    if (r.adds.ok === 0) continue;
    const perTask = (cpuSeconds: number) => ((cpuSeconds * 1000) / r.adds.ok).toFixed(2);
    const servers = r.store === "postgres" ? r.cpu.servers : 0;
    const busy = (r.cpu.nodes + (servers ?? 0) + r.cpu.producers) / r.seconds;
    lines.push(
      `| ${STORE_LABEL[r.store]} | ${r.nodes} | ${perTask(r.cpu.nodes)} | ${r.store === "postgres" && servers !== null ? perTask(servers) : "—"} | ${perTask(r.cpu.producers)} | ${busy.toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

function charts(results: HttpProducersResult[]): ScaleSection["charts"] {
  const curves = (figure: (r: HttpProducersResult) => number): Curve[] =>
    (["postgres", "sqlite"] as const).flatMap((store) => {
      const points = results
        .filter((r) => r.store === store && r.adds.ok > 0)
        .map((r) => ({ x: r.nodes, y: figure(r) }))
        .sort((a, b) => a.x - b.x);
      return points.length === 0 ? [] : [{ label: STORE_LABEL[store], points }];
    });
  return [
    {
      id: "http-producers-rate",
      title: `${PRODUCERS} HTTP producers: tasks added per second`,
      xLabel: "nodes",
      yLabel: "tasks/s",
      curves: curves((r) => r.adds.perSecond),
    },
    {
      id: "http-producers-p99",
      title: `${PRODUCERS} HTTP producers: p99 latency of POST /api/tasks`,
      xLabel: "nodes",
      yLabel: "p99 ms",
      curves: curves((r) => r.adds.p99Ms),
    },
  ];
}
