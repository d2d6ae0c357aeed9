/**
 * A time-series chart on uPlot (canvas, ~50 KB, draws thousands of points in a millisecond): made once, fed new data
 * with setData, sized by its container, recoloured when the system switches between light and dark.
 */
import { useEffect, useRef, useSyncExternalStore } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export type Series = { label: string; color: string; unit?: string; dash?: number[]; fill?: boolean };

const dark = window.matchMedia("(prefers-color-scheme: dark)");
function useDark(): boolean {
  return useSyncExternalStore(
    (listener) => {
      dark.addEventListener("change", listener);
      return () => dark.removeEventListener("change", listener);
    },
    () => dark.matches,
  );
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export function TimeChart({
  data,
  series,
  height = 180,
  label,
  format,
  stacked,
}: {
  /** [times in seconds, ...one array per series] */
  data: uPlot.AlignedData;
  series: Series[];
  height?: number;
  label: string;
  format: (value: number) => string;
  stacked?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const isDark = useDark();
  const latest = useRef(data);
  latest.current = data;

  // biome-ignore lint/correctness/useExhaustiveDependencies: made again only when its look changes
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    const grid = cssVar("--grid");
    const text = cssVar("--muted");
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      // With nothing but zeros the scale is 0 to 1: a scale of 0 to a sliver labelled every tick "0.00" alike.
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(stacked ? 1 : 0, max, min) || 1] } },
      axes: [
        { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "11px system-ui" },
        {
          stroke: text,
          grid: { stroke: grid, width: 1 },
          ticks: { show: false },
          size: 56,
          font: "11px system-ui",
          values: (_u, values) => values.map((v) => format(v)),
        },
      ],
      series: [
        { label: "time", value: (_u, v) => (v === null ? "—" : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.6,
          ...(s.dash === undefined ? {} : { dash: s.dash }),
          ...(s.fill ? { fill: `${s.color}22` } : {}),
          points: { show: false },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? "—" : format(v)),
        })),
      ],
    };
    const chart = new uPlot(options, latest.current, element);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(200, element.clientWidth), height }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [isDark, height, series.map((s) => s.label + s.color).join()]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div className="chart" ref={box} role="img" aria-label={label} style={{ minHeight: height + 30 }} />;
}
