/**
 * The scale bench (`npm run bench -- --scale`, and the end of a full `npm run bench`): how cost grows with node
 * processes, table size, HTTP producers and tasks in flight. Each measurement is a module that returns a section:
 * its table (markdown), its curves (drawn as PNG charts by the runner) and its raw figures (saved as JSON).
 */

export type ScaleSettings = {
  /** A quick check that every part runs (tiny sizes, a few seconds each); figures not meant to be read. */
  smoke: boolean;
  /** A progress line on stderr, e.g. `nodes conveyor-postgres ×2 12000/20000…`. */
  progress: (line: string) => void;
  /**
   * The task count of a section's runs, instead of its own (`--n`: a medium run while developing); a section whose
   * measure has no such count ignores it.
   */
  n?: number;
};

export type CurvePoint = { x: number; y: number };
/** One line of a chart: a system or a set-up, its points in x order. */
export type Curve = { label: string; points: CurvePoint[] };

export type ScaleChart = {
  /** File name part: bench/results/scale-<stamp>-<id>.png. */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  curves: Curve[];
  /** x values span orders of magnitude (0, 100k, 1M): spaced by rank, labelled with the values. */
  categoricalX?: boolean;
};

export type ScaleSection = {
  id: string;
  /** Heading in the printed output and in RESULTS.md. */
  title: string;
  /** The table(s) and a line or two saying how it was measured. */
  markdown: string;
  charts: ScaleChart[];
  /** Raw figures, saved as they are in the run's JSON. */
  data: unknown;
  /** What went wrong (a count that does not match, a crash); empty when all is well. A failure makes the run exit 1. */
  failures: string[];
};
