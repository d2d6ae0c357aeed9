/**
 * The soak's chart, for a person to look at: four panels over time (memory, handles and resources, event-loop
 * delay p99, work done and backlog), the warm-up shaded and each judged bound drawn as a dashed red line. Drawn as an
 * SVG and photographed to PNG by headless Chromium (Debian's /usr/bin/chromium through playwright-core, the
 * product's dev dependency that the browser tests use; CHROMIUM to override). Without Chromium, the SVG alone.
 */
import { escapeXml, niceCeiling, writeSvgAndPng } from "../lib/svg-png.ts";
import { BOUNDS, type Series, type Verdict } from "./growth.ts";
import type { Sample } from "./node-metrics.ts";

type Line = { label: string; color: string; values: number[]; bound?: number };
type Panel = { title: string; unit: string; lines: Line[] };

const WIDTH = 1240;
const HEIGHT = 850;
const PANEL_W = 520;
const PANEL_H = 330;

export function chartSvg(samples: Sample[], verdicts: Verdict[], warmupSamples: number, title: string): string {
  const bound = (series: Series) => verdicts.find((v) => v.series === series)?.bound;
  const perInterval = samples.map((s, i) =>
    i === 0 ? 0 : Math.round((s.completed - samples[i - 1]!.completed) / Math.max(0.001, s.t - samples[i - 1]!.t)),
  );
  const panels: Panel[] = [
    {
      title: "memory",
      unit: "MB",
      lines: [
        { label: "RSS", color: "#1f77b4", values: samples.map((s) => s.rssMB), bound: bound("rssMB") },
        { label: "heap used", color: "#2ca02c", values: samples.map((s) => s.heapUsedMB), bound: bound("heapUsedMB") },
      ],
    },
    {
      title: "open handles and active resources",
      unit: "",
      lines: [
        {
          label: "active resources",
          color: "#9467bd",
          values: samples.map((s) => s.resources),
          bound: bound("resources"),
        },
        { label: "libuv handles", color: "#8c564b", values: samples.map((s) => s.handles) },
      ],
    },
    {
      title: `event-loop delay p99 (per ${samples.length > 1 ? Math.round(samples[1]!.t - samples[0]!.t) : "?"} s sample)`,
      unit: "ms",
      lines: [
        {
          label: "p99",
          color: "#d62728",
          values: samples.map((s) => s.eventLoopP99Ms),
          bound: bound("eventLoopP99Ms"),
        },
      ],
    },
    {
      title: "work",
      unit: "",
      lines: [
        { label: "tasks completed / s (deliveries too)", color: "#ff7f0e", values: perInterval },
        { label: "queued (backlog)", color: "#7f7f7f", values: samples.map((s) => s.queued) },
      ],
    },
  ];
  const times = samples.map((s) => s.t / 60);
  const parts = panels.map((panel, i) => {
    const x0 = 70 + (i % 2) * (PANEL_W + 90);
    const y0 = 80 + Math.floor(i / 2) * (PANEL_H + 70);
    return drawPanel(panel, times, x0, y0, warmupSamples);
  });
  const legendNote = Object.values(BOUNDS)
    .map((b) => `${b.label} ≤ baseline × ${b.factor} + ${b.slack}${b.unit === "" ? "" : ` ${b.unit}`}`)
    .join(" · ");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="26" font-size="16" font-weight="bold">${escapeXml(title)}</text>
<text x="20" y="46" fill="#555">grey: warm-up (not judged) · dashed red: the bound · ${escapeXml(legendNote)}</text>
${parts.join("\n")}
</svg>`;
}

function drawPanel(panel: Panel, times: number[], x0: number, y0: number, warmupSamples: number): string {
  const all = panel.lines.flatMap((l) => [...l.values, ...(l.bound === undefined ? [] : [l.bound])]);
  const max = niceCeiling(Math.max(1, ...all));
  const tMax = Math.max(1 / 60, times.at(-1) ?? 1);
  const x = (t: number) => x0 + (t / tMax) * PANEL_W;
  const y = (v: number) => y0 + PANEL_H - (v / max) * PANEL_H;
  const out: string[] = [];
  out.push(`<text x="${x0}" y="${y0 - 8}" font-weight="bold">${escapeXml(panel.title)}</text>`);
  const warmEnd = times[Math.min(warmupSamples, times.length - 1)] ?? 0;
  out.push(`<rect x="${x0}" y="${y0}" width="${x(warmEnd) - x0}" height="${PANEL_H}" fill="#eee"/>`);
  out.push(`<rect x="${x0}" y="${y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    out.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(
      `<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end">${format(v)}${panel.unit === "" ? "" : ` ${panel.unit}`}</text>`,
    );
  }
  for (let k = 0; k <= 5; k++) {
    const t = (tMax * k) / 5;
    out.push(`<text x="${x(t)}" y="${y0 + PANEL_H + 16}" text-anchor="middle">${format(t)} min</text>`);
  }
  panel.lines.forEach((line, i) => {
    const points = line.values.map((v, j) => `${x(times[j]!).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${points}" fill="none" stroke="${line.color}" stroke-width="2"/>`);
    if (line.bound !== undefined)
      out.push(
        `<line x1="${x(warmEnd)}" x2="${x0 + PANEL_W}" y1="${y(line.bound)}" y2="${y(line.bound)}" stroke="#d62728" stroke-dasharray="6 4"/>`,
      );
    const lx = x0 + 10 + i * 230;
    out.push(`<rect x="${lx}" y="${y0 + 8}" width="12" height="12" fill="${line.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${y0 + 18}">${escapeXml(line.label)}</text>`);
  });
  return out.join("\n");
}

/** Writes `<base>.svg`, and `<base>.png` when Chromium is there; returns the PNG's path, or the SVG's. */
export function writeChart(svg: string, base: string): Promise<string> {
  return writeSvgAndPng(svg, base, WIDTH, HEIGHT);
}

function format(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}
