/**
 * Scale: memory per 1,000 tasks in flight. One `conveyor start` node at a time (SQLite, then PostgreSQL), at
 * concurrency 10,000, with 0, 1,000, 5,000 and 10,000 tasks held running (smoke: 0, 200, 500); RSS and heap used
 * after a forced GC at each, and the least-squares slope in MB per 1,000 in flight. BullMQ, measured the same way
 * (a Worker at the same concurrency in a process of its own, its processor awaiting a promise), for comparison.
 */
import { bullmqMemory } from "./memory-bullmq.ts";
import { conveyorMemory } from "./memory-conveyor.ts";
import { type MemoryPoint, mbPerThousand } from "./memory-point.ts";
import type { ScaleChart, ScaleSection, ScaleSettings } from "./types.ts";

type MemorySystem = "conveyor-sqlite" | "conveyor-postgres" | "bullmq";
const SYSTEM_LABEL: Record<MemorySystem, string> = {
  "conveyor-sqlite": "Conveyor, SQLite",
  "conveyor-postgres": "Conveyor, PostgreSQL",
  bullmq: "BullMQ (Redis)",
};

export type MemoryResult = {
  system: MemorySystem;
  points: MemoryPoint[];
  rssMBPerThousand: number | null;
  heapMBPerThousand: number | null;
  problem: string | null;
};

export async function measureMemory(settings: ScaleSettings): Promise<ScaleSection> {
  const levels = settings.smoke ? [0, 200, 500] : [0, 1000, 5000, 10_000];
  // Time for what a claim leaves behind (buffers, the first progress writes) to become garbage or settle in.
  const settleMs = settings.smoke ? 500 : 3000;
  const runs: Record<MemorySystem, () => Promise<MemoryPoint[]>> = {
    "conveyor-sqlite": () => conveyorMemory("sqlite", levels, settleMs, settings.progress),
    "conveyor-postgres": () => conveyorMemory("postgres", levels, settleMs, settings.progress),
    bullmq: () => bullmqMemory(levels, settleMs, settings.progress),
  };
  const results: MemoryResult[] = [];
  for (const [system, run] of Object.entries(runs) as [MemorySystem, () => Promise<MemoryPoint[]>][]) {
    try {
      const points = await run();
      results.push({
        system,
        points,
        rssMBPerThousand: mbPerThousand(points, (p) => p.rssMB),
        heapMBPerThousand: mbPerThousand(points, (p) => p.heapUsedMB),
        problem: null,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      settings.progress(`memory ${system}: FAILED: ${message}`);
      results.push({ system, points: [], rssMBPerThousand: null, heapMBPerThousand: null, problem: message });
    }
  }
  return {
    id: "memory",
    title: "Memory per 1,000 tasks in flight",
    markdown: report(results, levels, settleMs),
    charts: charts(results),
    data: { levels, settleMs, results },
    failures: results.flatMap((r) => (r.problem === null ? [] : [`memory ${r.system}: ${r.problem}`])),
  };
}

function report(results: MemoryResult[], levels: number[], settleMs: number): string {
  const n = (x: number) => x.toLocaleString("en");
  const lines = [
    `Tasks held running (a handler awaiting its signal; for BullMQ a processor awaiting a promise) at concurrency ${n(Math.max(...levels))}, added in bulk until the store says that many run; ${settleMs / 1000} s later, two forced full GCs, then the process's RSS and V8 heap used (Conveyor: a \`conveyor start\` node's /metrics; BullMQ: a Worker alone in its process, so its baseline is lower). MB per 1,000: least-squares slope over the readings.`,
    "",
    `| system | figure | ${levels.map((l) => `${n(l)} in flight`).join(" | ")} | MB per 1,000 in flight |`,
    `|---|---|${levels.map(() => "---:|").join("")}---:|`,
  ];
  for (const r of results) {
    if (r.problem !== null) {
      lines.push(`| ${SYSTEM_LABEL[r.system]} | — | ${levels.map(() => "—").join(" | ")} | failed: ${r.problem} |`);
      continue;
    }
    const row = (figure: string, of: (p: MemoryPoint) => number, slope: number | null) =>
      `| ${SYSTEM_LABEL[r.system]} | ${figure} | ${levels
        .map((l) => r.points.find((p) => p.inFlight === l))
        .map((p) => (p === undefined ? "—" : of(p).toFixed(1)))
        .join(" | ")} | ${slope?.toFixed(2) ?? "—"} |`;
    lines.push(row("heap MB", (p) => p.heapUsedMB, r.heapMBPerThousand));
    lines.push(row("RSS MB", (p) => p.rssMB, r.rssMBPerThousand));
  }
  return lines.join("\n");
}

function charts(results: MemoryResult[]): ScaleChart[] {
  const curves = (of: (p: MemoryPoint) => number) =>
    results
      .filter((r) => r.points.length > 0)
      .map((r) => ({ label: SYSTEM_LABEL[r.system], points: r.points.map((p) => ({ x: p.inFlight, y: of(p) })) }));
  return [
    {
      id: "memory-heap",
      title: "Heap used with tasks in flight",
      xLabel: "tasks in flight",
      yLabel: "heap used MB",
      curves: curves((p) => p.heapUsedMB),
    },
    {
      id: "memory-rss",
      title: "RSS with tasks in flight",
      xLabel: "tasks in flight",
      yLabel: "RSS MB",
      curves: curves((p) => p.rssMB),
    },
  ];
}
