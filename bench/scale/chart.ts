/**
 * A scale chart: one or more curves over a shared x axis (processes, tasks in a table, producers), y from zero so
 * that a ratio between curves or points reads as a ratio of heights, a legend on the right. With `categoricalX` the
 * x values are spaced by rank and labelled with their values (0, 100k, 1M would otherwise crowd 0 and 100k
 * together). Drawn as an SVG; the PNG is taken by headless Chromium as for the soak's chart (lib/svg-png.ts).
 */
import { escapeXml, niceCeiling, writeSvgsAndPngs } from "../lib/svg-png.ts";
import type { ScaleChart } from "./types.ts";

const WIDTH = 960;
const HEIGHT = 520;
const PLOT = { x: 90, y: 60, w: 600, h: 380 };
const LEGEND_X = PLOT.x + PLOT.w + 30;
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

export function lineChartSvg(chart: ScaleChart): string {
  const xs = [...new Set(chart.curves.flatMap((c) => c.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = chart.curves.flatMap((c) => c.points.map((p) => p.y)).filter(Number.isFinite);
  const yMax = niceCeiling(Math.max(1e-9, ...ys));
  const xMin = xs[0] ?? 0;
  const xMax = xs.at(-1) ?? 1;
  // A margin inside the frame, so that the first and last points are not drawn on it.
  const pad = PLOT.w * 0.06;
  const x = chart.categoricalX
    ? (v: number) => PLOT.x + pad + (xs.length < 2 ? 0 : (xs.indexOf(v) / (xs.length - 1)) * (PLOT.w - 2 * pad))
    : (v: number) => PLOT.x + pad + (xMax === xMin ? 0 : ((v - xMin) / (xMax - xMin)) * (PLOT.w - 2 * pad));
  const y = (v: number) => PLOT.y + PLOT.h - (v / yMax) * PLOT.h;
  const out: string[] = [];
  out.push(`<rect x="${PLOT.x}" y="${PLOT.y}" width="${PLOT.w}" height="${PLOT.h}" fill="none" stroke="#999"/>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    out.push(`<line x1="${PLOT.x}" x2="${PLOT.x + PLOT.w}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${PLOT.x - 8}" y="${y(v) + 4}" text-anchor="end">${compact(v)}</text>`);
  }
  // Categorical: every value is a tick. Numeric: the values themselves when few, else six even steps.
  const ticks =
    chart.categoricalX || xs.length <= 8 ? xs : Array.from({ length: 6 }, (_, k) => xMin + ((xMax - xMin) * k) / 5);
  for (const t of ticks) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${PLOT.y + PLOT.h}" y2="${PLOT.y + PLOT.h + 5}" stroke="#999"/>`);
    out.push(`<text x="${x(t)}" y="${PLOT.y + PLOT.h + 20}" text-anchor="middle">${compact(t)}</text>`);
  }
  out.push(
    `<text x="${PLOT.x + PLOT.w / 2}" y="${PLOT.y + PLOT.h + 44}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
  );
  const yMid = PLOT.y + PLOT.h / 2;
  out.push(
    `<text x="22" y="${yMid}" text-anchor="middle" transform="rotate(-90 22 ${yMid})">${escapeXml(chart.yLabel)}</text>`,
  );
  chart.curves.forEach((curve, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = curve.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const path = points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
    if (points.length > 1) out.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    for (const p of points)
      out.push(`<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="4" fill="${color}"/>`);
    const ly = PLOT.y + 10 + i * 24;
    out.push(`<rect x="${LEGEND_X}" y="${ly}" width="14" height="14" fill="${color}"/>`);
    out.push(`<text x="${LEGEND_X + 20}" y="${ly + 12}">${escapeXml(curve.label)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="30" font-size="17" font-weight="bold">${escapeXml(chart.title)}</text>
${out.join("\n")}
</svg>`;
}

/** Writes each chart's `<base>.svg` and `<base>.png`; returns the PNGs' paths (the SVGs' without Chromium). */
export function writeLineCharts(charts: { chart: ScaleChart; base: string }[]): Promise<string[]> {
  return writeSvgsAndPngs(
    charts.map(({ chart, base }) => ({ svg: lineChartSvg(chart), base, width: WIDTH, height: HEIGHT })),
  );
}

/** 950, 1.2k, 100k, 1M, 0.25: short enough for an axis. */
export function compact(v: number): string {
  const abs = Math.abs(v);
  const trim = (x: number) => String(Math.round(x * 10) / 10);
  if (abs >= 1e6) return `${trim(v / 1e6)}M`;
  if (abs >= 1e3) return `${trim(v / 1e3)}k`;
  if (abs >= 10 || v === 0) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}
