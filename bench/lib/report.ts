/**
 * Turns the systems' results into the comparison: a table of figures, the drain along each path (each
 * variant beside the same system's drain), Conveyor's ratio to the best peer per workload, its share of its
 * store's raw loop, and the targets met or missed. Markdown, so the same text goes to the terminal and to
 * RESULTS.md.
 */
import { fmtRate } from "./harness.ts";
import type { MachineInfo } from "./machine.ts";
import { DRAIN_VARIANTS, type DrainVariant, type StoreName, type SystemResult } from "./types.ts";

export type RunSettings = {
  n: number;
  batch: number;
  concurrency: number;
  latencyCount: number;
  latencyIntervalMs: number;
  smoke: boolean;
  /** How long workers ran idle before the drain variants' tasks came; absent in runs saved before the variants. */
  idleMs?: number;
  /** Rounds of the run (each figure the median of its rounds); absent in runs saved before rounds existed. */
  rounds?: number;
};

export type Comparison = {
  system: string;
  store: StoreName;
  enqueue?: { ratio: number; bestPeer: string };
  drain?: { ratio: number; bestPeer: string };
  latency?: { p50: number; bestPeer: string; bestPeerP50: number; bullmqP50?: number };
  /** Conveyor's rate as a share of the raw loop on the same store. */
  shareOfLimit?: { drain?: number; enqueue?: number };
  /** p50 of one durable single-row insert on the same store: the floor under its add→start. */
  latencyFloorP50?: number;
};

export type Target = { system: string; what: string; goal: string; actual: string; met: boolean | null };

/** One system's drain along each path measured: its rate, and its ratio to the same system's `drain`. */
export type DrainPaths = {
  system: string;
  drain?: number;
  /** "not applicable": the system has no such path; absent: not measured (not asked for, or broken). */
  variants: Partial<Record<DrainVariant, { perSecond: number; ratioToDrain?: number } | "not applicable">>;
};

export type Report = { comparisons: Comparison[]; drainPaths: DrainPaths[]; targets: Target[]; markdown: string };

/** Other processes' CPU during one system's run above which its figures are flagged (the CEO's "quiet run" bound). */
export const QUIET_CPU_SECONDS = 1;

const RAW_OF: Record<StoreName, string | undefined> = {
  sqlite: "sqlite-raw",
  postgres: "postgres-raw",
  redis: undefined,
};

export function buildReport(
  results: SystemResult[],
  machine: MachineInfo,
  settings: RunSettings,
  startedAt: Date,
): Report {
  const ok = (r: SystemResult) => r.status === "ok";
  const peers = results.filter((r) => r.info.kind === "peer" && ok(r));
  const best = (pick: (r: SystemResult) => number | undefined, higher: boolean) => {
    let winner: SystemResult | undefined;
    for (const r of peers) {
      const value = pick(r);
      if (value === undefined) continue;
      const current = winner === undefined ? undefined : pick(winner);
      if (current === undefined || (higher ? value > current : value < current)) winner = r;
    }
    return winner;
  };
  const bestEnqueue = best((r) => r.enqueue?.perSecond, true);
  const bestDrain = best((r) => r.drain?.perSecond, true);
  const bestLatency = best((r) => r.latency?.p50, false);
  const bullmq = results.find((r) => r.info.name === "bullmq" && ok(r));

  const comparisons: Comparison[] = [];
  for (const r of results.filter((x) => x.info.kind === "conveyor" && ok(x))) {
    const c: Comparison = { system: r.info.name, store: r.info.store };
    if (r.enqueue && bestEnqueue?.enqueue)
      c.enqueue = { ratio: r.enqueue.perSecond / bestEnqueue.enqueue.perSecond, bestPeer: bestEnqueue.info.name };
    if (r.drain && bestDrain?.drain)
      c.drain = { ratio: r.drain.perSecond / bestDrain.drain.perSecond, bestPeer: bestDrain.info.name };
    if (r.latency && bestLatency?.latency) {
      c.latency = { p50: r.latency.p50, bestPeer: bestLatency.info.name, bestPeerP50: bestLatency.latency.p50 };
      if (bullmq?.latency) c.latency.bullmqP50 = bullmq.latency.p50;
    }
    const raw = results.find((x) => x.info.name === RAW_OF[r.info.store] && ok(x));
    if (raw) {
      c.shareOfLimit = {};
      if (r.drain && raw.drain) c.shareOfLimit.drain = r.drain.perSecond / raw.drain.perSecond;
      if (r.enqueue && raw.enqueue) c.shareOfLimit.enqueue = r.enqueue.perSecond / raw.enqueue.perSecond;
      if (raw.latency) c.latencyFloorP50 = raw.latency.p50;
    }
    comparisons.push(c);
  }
  const targets = checkTargets(results, comparisons);
  const paths = drainPaths(results);
  return {
    comparisons,
    drainPaths: paths,
    targets,
    markdown: markdown(results, comparisons, paths, targets, machine, settings, startedAt),
  };
}

/** The drain variants the run covered (measured or found missing in some system), in their order. */
function variantsOf(results: SystemResult[]): DrainVariant[] {
  return DRAIN_VARIANTS.filter((v) =>
    results.some((r) => r.drainVariants?.[v] !== undefined || r.notApplicable?.includes(v)),
  );
}

function drainPaths(results: SystemResult[]): DrainPaths[] {
  const variants = variantsOf(results);
  if (variants.length === 0) return [];
  return results.map((r) => {
    const row: DrainPaths = { system: r.info.name, ...(r.drain ? { drain: r.drain.perSecond } : {}), variants: {} };
    for (const v of variants) {
      const figures = r.drainVariants?.[v];
      if (r.notApplicable?.includes(v)) row.variants[v] = "not applicable";
      else if (figures)
        row.variants[v] = {
          perSecond: figures.perSecond,
          ...(r.drain ? { ratioToDrain: figures.perSecond / r.drain.perSecond } : {}),
        };
    }
    return row;
  });
}

function checkTargets(results: SystemResult[], comparisons: Comparison[]): Target[] {
  const targets: Target[] = [];
  const ratio = (x: number | undefined) => (x === undefined ? "n/a" : `${x.toFixed(2)}×`);
  const pct = (x: number | undefined) => (x === undefined ? "n/a" : `${Math.round(x * 100)} %`);
  const add = (system: string, what: string, goal: string, actual: string, met: boolean | null) =>
    targets.push({ system, what, goal, actual, met });
  for (const system of ["conveyor-postgres", "conveyor-sqlite"]) {
    const c = comparisons.find((x) => x.system === system);
    const r = results.find((x) => x.info.name === system);
    if (c === undefined) {
      add(system, "all targets", "—", r ? `${r.status}${r.reason ? `: ${r.reason}` : ""}` : "not run", null);
      continue;
    }
    const has = <T>(x: T | undefined, test: (v: T) => boolean) => (x === undefined ? null : test(x));
    if (system === "conveyor-postgres") {
      add(
        system,
        "enqueue vs best peer",
        "≥ 1.5×",
        ratio(c.enqueue?.ratio),
        has(c.enqueue?.ratio, (v) => v >= 1.5),
      );
      add(
        system,
        "drain vs best peer",
        "≥ 1.25×",
        ratio(c.drain?.ratio),
        has(c.drain?.ratio, (v) => v >= 1.25),
      );
      const bull = c.latency?.bullmqP50;
      add(
        system,
        "add→start p50",
        `≤ BullMQ's${bull === undefined ? "" : ` (${bull} ms)`}`,
        c.latency ? `${c.latency.p50} ms` : "n/a",
        c.latency && bull !== undefined ? c.latency.p50 <= bull : null,
      );
    } else {
      add(
        system,
        "enqueue vs best peer",
        "≥ 5×",
        ratio(c.enqueue?.ratio),
        has(c.enqueue?.ratio, (v) => v >= 5),
      );
      add(
        system,
        "drain vs best peer",
        "≥ 2.5×",
        ratio(c.drain?.ratio),
        has(c.drain?.ratio, (v) => v >= 2.5),
      );
      add(
        system,
        "add→start p50",
        "≤ 1 ms",
        c.latency ? `${c.latency.p50} ms` : "n/a",
        has(c.latency?.p50, (v) => v <= 1),
      );
      add(
        system,
        "drain vs raw claim loop (same batch)",
        "≥ 60 %",
        pct(c.shareOfLimit?.drain),
        has(c.shareOfLimit?.drain, (v) => v >= 0.6),
      );
    }
  }
  return targets;
}

function markdown(
  results: SystemResult[],
  comparisons: Comparison[],
  paths: DrainPaths[],
  targets: Target[],
  machine: MachineInfo,
  s: RunSettings,
  startedAt: Date,
): string {
  const lines: string[] = [];
  const pg = machine.postgresSettings;
  const rounds =
    (s.rounds ?? 1) > 1
      ? ` Every system ran ${s.rounds} times, round after round; each figure is the median of its rounds (the range is in the status column).`
      : "";
  lines.push(
    `Run ${startedAt.toISOString()}${s.smoke ? " (smoke)" : ""}: N = ${s.n.toLocaleString("en")}, enqueue batches of ${s.batch}, drain concurrency ${s.concurrency}, latency ${s.latencyCount} tasks ${s.latencyIntervalMs} ms apart.${rounds}`,
  );
  lines.push("");
  lines.push(
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB; load average ${machine.loadAverage} at start. ` +
      `Node ${machine.node}; SQLite ${machine.sqlite}; PostgreSQL ${machine.postgres}` +
      (Object.keys(pg).length > 0
        ? ` (${Object.entries(pg)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")})`
        : "") +
      `; Redis ${machine.redis}. ` +
      (machine.git === undefined
        ? ""
        : `Conveyor at commit ${machine.git.commit}` +
          (machine.git.uncommittedSrc.length > 0
            ? ` plus uncommitted changes to ${machine.git.uncommittedSrc.length} file(s) under src/ (listed in the JSON).`
            : ".")),
  );
  lines.push("");
  lines.push(
    "| system | store | enqueue /s | drain /s | add→start p50 ms | p99 ms | longest timer delay in drain, ms | status |",
  );
  lines.push("|---|---|---:|---:|---:|---:|---:|---|");
  for (const r of results) {
    const name = r.info.kind === "raw" ? `${r.info.name} (physical limit)` : r.info.name;
    const notes: string[] = [];
    if (r.drain && r.drain.duplicates > 0) notes.push(`${r.drain.duplicates} ran twice`);
    for (const [variant, figures] of Object.entries(r.drainVariants ?? {})) {
      if (figures.duplicates > 0) notes.push(`${variant}: ${figures.duplicates} ran twice`);
    }
    if (r.otherCpuSeconds != null && r.otherCpuSeconds >= QUIET_CPU_SECONDS)
      notes.push(`noisy: other processes used ${r.otherCpuSeconds} CPU-s`);
    if ((r.attempts ?? 1) > 1) notes.push(`quietest of ${r.attempts} attempts`);
    if (r.rounds !== undefined && r.rounds.count > 1 && r.status === "ok") notes.push(roundsRange(r.rounds));
    const status = r.status === "ok" ? ["ok", ...notes].join(", ") : `${r.status}: ${r.reason ?? ""}`;
    const rate = (x: { perSecond: number } | undefined) => (x ? fmtRate(x.perSecond) : "–");
    const stall = r.info.kind === "raw" ? "–" : (r.drain?.maxTimerDelayMs ?? "–");
    lines.push(
      `| ${name} | ${r.info.store} | ${rate(r.enqueue)} | ${rate(r.drain)} | ${r.latency?.p50 ?? "–"} | ${r.latency?.p99 ?? "–"} | ${stall} | ${status.replaceAll("|", "\\|")} |`,
    );
  }
  lines.push("");
  lines.push(
    `Raw rows: enqueue = batched insert, drain = claim-and-complete loop, add→start = one single-row insert's own round trip, commit included: the floor under any durable add→start on that store (no runtime; see bench/README.md). A row is flagged noisy when other processes used ≥ ${QUIET_CPU_SECONDS} CPU-s during its run. The timer delay is how long the runtime's event loop went without running timers (its heartbeats among them) while draining.`,
  );
  lines.push(...drainPathsMarkdown(results, paths, s));
  if (comparisons.length > 0) {
    lines.push("");
    lines.push(
      "| Conveyor | enqueue × best peer | drain × best peer | add→start p50 vs best peer | add→start p50 vs the store's floor | drain, share of store's raw loop | enqueue, share of raw insert |",
    );
    lines.push("|---|---:|---:|---:|---:|---:|---:|");
    const pct = (x: number | undefined) => (x === undefined ? "–" : `${Math.round(x * 100)} %`);
    for (const c of comparisons) {
      const e = c.enqueue ? `${c.enqueue.ratio.toFixed(2)}× (${c.enqueue.bestPeer})` : "–";
      const d = c.drain ? `${c.drain.ratio.toFixed(2)}× (${c.drain.bestPeer})` : "–";
      const l = c.latency ? `${c.latency.p50} vs ${c.latency.bestPeerP50} ms (${c.latency.bestPeer})` : "–";
      const floor = c.latency && c.latencyFloorP50 !== undefined ? `${c.latency.p50} vs ${c.latencyFloorP50} ms` : "–";
      lines.push(
        `| ${c.system} | ${e} | ${d} | ${l} | ${floor} | ${pct(c.shareOfLimit?.drain)} | ${pct(c.shareOfLimit?.enqueue)} |`,
      );
    }
  }
  const paired = roundByRound(results, comparisons);
  if (paired.length > 0) {
    lines.push("");
    lines.push(
      "Round by round (each round runs every system once, seconds apart, so a ratio taken within a round is spared most of the machine's drift):",
    );
    lines.push("");
    lines.push("| Conveyor, per round | min | median | max | |");
    lines.push("|---|---:|---:|---:|---|");
    for (const row of paired)
      lines.push(
        `| ${row.what} | ${row.format(row.min)} | ${row.format(row.median)} | ${row.format(row.max)} | ${row.note} |`,
      );
  }
  if (targets.length > 0) {
    lines.push("");
    lines.push("| target | goal | this run | |");
    lines.push("|---|---|---|---|");
    for (const t of targets) {
      const mark = t.met === null ? "n/a" : t.met ? "met" : "missed";
      lines.push(`| ${t.system}: ${t.what} | ${t.goal} | ${t.actual.replaceAll("|", "\\|")} | ${mark} |`);
    }
  }
  const settings = results.filter((r) => r.info.settings !== "");
  if (settings.length > 0) {
    lines.push("");
    lines.push("Settings:");
    lines.push("");
    for (const r of settings) {
      const versions = r.info.versions
        ? ` [${Object.entries(r.info.versions)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}]`
        : "";
      lines.push(`- ${r.info.name}${versions}: ${r.info.settings}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The drain table: one column per path, each variant's rate and its ratio to the same system's drain. */
function drainPathsMarkdown(results: SystemResult[], paths: DrainPaths[], s: RunSettings): string[] {
  if (paths.length === 0) return [];
  const variants = variantsOf(results);
  const idle = s.idleMs === undefined ? "" : ` and leave them idle for ${s.idleMs} ms`;
  const lines = [
    "",
    "Drain along each path to running workers, N tasks each, every variant in a process of its own on a fresh store: " +
      "drain = added before the workers start; the variants start the workers on an empty store" +
      idle +
      ", then " +
      "drain-producer = added by a separate producer; drain-self = added through the instance running them; " +
      "drain-resume = added to their paused queue, clock from the resume. " +
      "× = the variant's rate over the same system's drain; — = the system has no such path.",
    "",
    `| system | drain /s | ${variants.map((v) => `${v} /s`).join(" | ")} |`,
    `|---|---:|${variants.map(() => "---:").join("|")}|`,
  ];
  for (const row of paths) {
    const cells = variants.map((v) => {
      const cell = row.variants[v];
      if (cell === undefined) return "–";
      if (cell === "not applicable") return "—";
      return cell.ratioToDrain === undefined
        ? fmtRate(cell.perSecond)
        : `${fmtRate(cell.perSecond)} (${cell.ratioToDrain.toFixed(2)}×)`;
    });
    lines.push(`| ${row.system} | ${row.drain === undefined ? "–" : fmtRate(row.drain)} | ${cells.join(" | ")} |`);
  }
  const described = results.filter((r) => r.info.drainPaths !== undefined);
  if (described.length > 0) {
    lines.push("");
    for (const r of described) lines.push(`- ${r.info.name}: ${r.info.drainPaths}`);
  }
  return lines;
}

type PairedRow = {
  what: string;
  min: number;
  median: number;
  max: number;
  format: (x: number) => string;
  note: string;
};

/**
 * With rounds: each Conveyor figure against the same peer's in the same round (the peer that is best by the
 * medians): enqueue and drain as ratios, add→start p50 as the difference from BullMQ's.
 */
function roundByRound(results: SystemResult[], comparisons: Comparison[]): PairedRow[] {
  const rows: PairedRow[] = [];
  const byName = (name: string | undefined) => results.find((r) => r.info.name === name && r.status === "ok");
  const times = (x: number) => `${x.toFixed(2)}×`;
  const ms = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)} ms`;
  for (const c of comparisons) {
    const own = byName(c.system)?.rounds;
    if (own === undefined || own.count < 2) continue;
    const add = (what: string, values: number[], format: (x: number) => string, note: string) => {
      if (values.length !== own.count) return;
      const sorted = [...values].sort((a, b) => a - b);
      rows.push({
        what,
        min: sorted[0]!,
        median: sorted[Math.floor((sorted.length - 1) / 2)]!,
        max: sorted[sorted.length - 1]!,
        format,
        note,
      });
    };
    for (const workload of ["enqueue", "drain"] as const) {
      const peer = byName(c[workload]?.bestPeer)?.rounds?.[workload];
      if (peer === undefined || peer.length !== own[workload].length) continue;
      add(
        `${c.system}: ${workload} ÷ ${c[workload]!.bestPeer}`,
        own[workload].map((v, i) => v / peer[i]!),
        times,
        "",
      );
    }
    for (const [variant, values] of Object.entries(own.drainVariants ?? {})) {
      if (values.length === own.drain.length)
        add(
          `${c.system}: ${variant} ÷ its drain`,
          values.map((v, i) => v / own.drain[i]!),
          times,
          "",
        );
    }
    const bull = byName("bullmq")?.rounds?.p50;
    if (bull !== undefined && bull.length === own.p50.length) {
      const diff = own.p50.map((v, i) => v - bull[i]!);
      add(
        `${c.system}: add→start p50 − bullmq's`,
        diff,
        ms,
        `ahead in ${diff.filter((d) => d <= 0).length} of ${diff.length} rounds`,
      );
    }
  }
  return rows;
}

/** "rounds: enqueue 80.0k–119k, drain 27.4k–29.0k, p50 0.32–0.36 ms", for the figures the system has. */
function roundsRange(rounds: NonNullable<SystemResult["rounds"]>): string {
  const range = (values: number[], format: (v: number) => string) =>
    values.length === 0 ? null : `${format(Math.min(...values))}–${format(Math.max(...values))}`;
  const parts = [
    range(rounds.enqueue, fmtRate) && `enqueue ${range(rounds.enqueue, fmtRate)}`,
    range(rounds.drain, fmtRate) && `drain ${range(rounds.drain, fmtRate)}`,
    ...Object.entries(rounds.drainVariants ?? {}).map(
      ([variant, values]) => range(values, fmtRate) && `${variant} ${range(values, fmtRate)}`,
    ),
    range(rounds.p50, String) && `p50 ${range(rounds.p50, String)} ms`,
  ].filter((part) => part !== null);
  return `rounds: ${parts.join(", ")}`;
}
