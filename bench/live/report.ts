/**
 * The live bench's report: Conveyor and Socket.IO side by side, one row per figure, then the goals. Markdown, for
 * the terminal and for RESULTS.md alike.
 */
import type { MachineInfo } from "../lib/machine.ts";
import type { Delivery, LiveResult } from "./scenario.ts";
import type { LiveSettings } from "./settings.ts";
import type { LatencySummary } from "./stats.ts";

const TITLES: Record<string, string> = {
  conveyor: "Conveyor (PostgreSQL, LISTEN/NOTIFY)",
  "socket.io": "Socket.IO 4 + Redis adapter",
};

/** The p99 Conveyor's live stream is held to (issue 13), beside "no worse than Socket.IO's" and "nothing lost". */
export const P99_GOAL_MS = 25;

export function liveReport(
  results: LiveResult[],
  settings: LiveSettings,
  machine: MachineInfo,
  startedAt: Date,
  versions: Record<string, string>,
): string {
  const lines: string[] = [];
  const s = settings;
  lines.push(
    `Run ${startedAt.toISOString()}: ${s.clients.toLocaleString("en")} clients on ${s.channels} application channels (${s.clients / s.channels} each) and ${s.tasksClients} on \`tasks\`, split over two servers; ${s.rate.toLocaleString("en")} events/s for ${s.seconds} s, half published on each server, round-robin over the channels (${(s.rate * (s.clients / s.channels)).toLocaleString("en")} deliveries/s); a drain of ${s.taskRate} tasks/s on the nodes; catch-up of ${s.catchUp.toLocaleString("en")} events.${s.smoke ? " **Smoke run: tiny numbers.**" : ""}`,
    "",
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB; load average ${machine.loadAverage} at start. Node ${machine.node}; PostgreSQL ${machine.postgres} (${Object.entries(
      machine.postgresSettings,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ", ",
      )}); Redis ${machine.redis}. Conveyor at commit ${machine.git?.commit ?? "?"}${(machine.git?.uncommittedSrc.length ?? 0) > 0 ? ` (with uncommitted changes to ${machine.git!.uncommittedSrc.join(", ")})` : ""}. ${Object.entries(
      versions,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}. Every process (servers, load generators, PostgreSQL, Redis) on this one machine, so one clock.`,
    "",
  );
  const columns = results.map((r) => r.system);
  const header = `| | ${columns.map((c) => TITLES[c] ?? c).join(" | ")} |`;
  lines.push(header, `|---|${columns.map(() => "---:").join("|")}|`);
  const row = (label: string, cell: (r: LiveResult) => string) =>
    lines.push(`| ${label} | ${results.map((r) => (r.status === "unavailable" ? "—" : cell(r))).join(" | ")} |`);
  row("event→client latency p50 / p99 / max, ms", (r) => latencyCell(r.latency));
  row("p90 / mean, ms", (r) => (r.latency === null ? "—" : `${r.latency.p90} / ${r.latency.mean}`));
  row("p50 / p99, published on the client's own server, ms", (r) => p50p99(r.latencyBySource?.sameServer));
  row("p50 / p99, published on the other server, ms", (r) => p50p99(r.latencyBySource?.otherServer));
  row("deliveries: delivered / expected", (r) => deliveredCell(r.delivery));
  row("lost / duplicated / out of order", (r) => faultsCell(r.delivery));
  row("clients whose events differ from the log's", (r) => logCell(r.delivery));
  row("`tasks` channel: task events/s, delivered / expected", (r) =>
    r.tasks === null ? "—" : `${r.tasks.eventsPerSecond}/s, ${deliveredCell(r.tasks)}`,
  );
  row("`tasks` channel: lost / duplicated / out of order", (r) => faultsCell(r.tasks));
  row("`tasks` channel latency p50 / p99 / max, ms", (r) => latencyCell(r.tasks?.latency ?? null));
  row("published: events, s (publisher's own backlog, max)", (r) =>
    r.published === null
      ? "—"
      : `${r.published.events.toLocaleString("en")} in ${r.published.seconds} s (${r.published.behindMax})`,
  );
  // Runs saved before this probe existed lack it: no row of dashes.
  if (results.some((r) => r.handedOut !== undefined))
    row("publish → handed out by the node's live feed, p50 / p99, ms", (r) => p50p99(r.handedOut));
  row("publish call p50 / p99, ms", (r) =>
    r.published === null ? "—" : `${r.published.callMs.p50} / ${r.published.callMs.p99}`,
  );
  row("connections per server", (r) => r.connections.join(" + "));
  row("server RSS per connection, connected and idle (KiB)", (r) => rssCell(r, "connected"));
  row("server RSS per connection, under load (KiB)", (r) => rssCell(r, "loaded"));
  row("server RSS before clients (MiB)", (r) => (r.rss === null ? "—" : r.rss.before.map(mib).join(" + ")));
  row(`catch-up of ${s.catchUp.toLocaleString("en")} missed events: delivered`, (r) => catchUpDelivered(r));
  row("catch-up rate, events/s until live (s)", (r) => catchUpRate(r));
  row(
    "CPU-s in the steady state: servers / load generators / database (its PostgreSQL backends; Redis) / anything else",
    (r) =>
      r.cpu === null
        ? "—"
        : `${sum(r.cpu.nodes)} / ${sum(r.cpu.loadgens)} / ${r.cpu.database} / ${r.cpu.other ?? "?"}${(r.cpu.other ?? 0) >= 1 ? " (noisy)" : ""} (in ${r.cpu.wallSeconds} s)`,
  );
  row("longest event-loop stall: servers / load generators, ms", (r) =>
    r.loopDelay === null
      ? "—"
      : `${r.loopDelay.nodes.map((l) => l.max).join(" + ")} / ${r.loopDelay.loadgens.map((l) => l.max).join(" + ")}`,
  );
  row("status", (r) => {
    const attempts = (r.attempts ?? 1) > 1 ? ` (the quietest of ${r.attempts} attempts)` : "";
    return `${r.status === "ok" ? "ok" : `${r.status}: ${r.reason ?? ""}`}${attempts}`;
  });
  for (const r of results.filter((r) => r.status === "unavailable"))
    lines.push("", `${TITLES[r.system]}: unavailable: ${r.reason}`);
  lines.push("", ...goals(results), "", "Settings:", "");
  for (const r of results) lines.push(`- ${TITLES[r.system]}: ${r.settings}`);
  return `${lines.join("\n")}\n`;
}

function goals(results: LiveResult[]): string[] {
  const conveyor = results.find((r) => r.system === "conveyor" && r.status !== "unavailable");
  if (conveyor === undefined) return [];
  const peer = results.find((r) => r.system === "socket.io" && r.latency !== null);
  const p99 = conveyor.latency?.p99 ?? Number.NaN;
  const verdict = (met: boolean) => (met ? "met" : "missed");
  const lines = [
    "| goal (Conveyor) | this run | |",
    "|---|---|---|",
    `| p99 ≤ ${P99_GOAL_MS} ms | ${p99} ms | ${verdict(p99 <= P99_GOAL_MS)} |`,
    `| 0 lost | ${conveyor.delivery?.lost ?? "?"} lost, ${conveyor.tasks?.lost ?? "?"} on \`tasks\` | ${verdict(conveyor.delivery?.lost === 0 && conveyor.tasks?.lost === 0)} |`,
  ];
  if (peer !== undefined)
    lines.push(
      `| p99 no worse than Socket.IO's | ${p99} vs ${peer.latency!.p99} ms | ${verdict(p99 <= peer.latency!.p99)} |`,
    );
  return lines;
}

function latencyCell(l: LatencySummary | null): string {
  return l === null || l.count === 0 ? "—" : `${l.p50} / ${l.p99} / ${l.max}`;
}

function p50p99(l: LatencySummary | undefined): string {
  return l === undefined || l.count === 0 ? "—" : `${l.p50} / ${l.p99}`;
}

function deliveredCell(d: Delivery | null): string {
  return d === null ? "—" : `${d.delivered.toLocaleString("en")} / ${d.expected.toLocaleString("en")}`;
}

function faultsCell(d: Delivery | null): string {
  if (d === null) return "—";
  const reconnects = d.reconnects > 0 ? ` (${d.reconnects} reconnects)` : "";
  return `${d.lost} / ${d.duplicates} / ${d.outOfOrder}${reconnects}`;
}

function logCell(d: Delivery | null): string {
  if (d === null) return "—";
  return d.unlikeLog === null ? "no log" : `${d.unlikeLog} of ${d.clients}`;
}

function rssCell(r: LiveResult, when: "connected" | "loaded"): string {
  if (r.rss === null) return "—";
  const rss = r.rss;
  return rss[when]
    .map((bytes, node) => Math.round((bytes - rss.before[node]!) / 1024 / Math.max(1, r.connections[node] ?? 1)))
    .join(" / ");
}

function catchUpDelivered(r: LiveResult): string {
  const c = r.catchUp;
  if (c === null) return "—";
  const recovered = c.report.recovered ? "" : ", not recovered";
  const twice = c.report.duplicates > 0 ? `, ${c.report.duplicates} twice` : "";
  const reconnects = c.report.reconnects > 0 ? `, ${c.report.reconnects} reconnects` : "";
  return `${c.report.distinct.toLocaleString("en")} / ${c.events.toLocaleString("en")}${twice}${recovered}${reconnects}`;
}

function catchUpRate(r: LiveResult): string {
  const c = r.catchUp;
  if (c === null) return "—";
  if (c.seconds === null) return "— (never live: no replay)";
  return `${Math.round(c.events / c.seconds).toLocaleString("en")} (${Math.round(c.seconds * 100) / 100} s)`;
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

function sum(values: number[]): number {
  return Math.round(values.reduce((a, b) => a + b, 0) * 100) / 100;
}
