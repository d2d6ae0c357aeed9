/**
 * Where a bench of its own (`--load`, `--soak`) keeps its figures: JSON in bench/results/ (`<kind>-<stamp>.json` for a
 * complete run, committed; `<kind>-smoke-latest.json` or `<kind>-partial-<stamp>.json` otherwise, git-ignored), and
 * for a complete run its section of bench/RESULTS.md between its markers (text outside them is kept).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const BENCH_DIR = new URL("../", import.meta.url);
export const RESULTS_DIR = new URL("./results/", BENCH_DIR);

export type ResultsOutput = {
  kind: string;
  smoke: boolean;
  complete: boolean;
  startedAt: Date;
  json: unknown;
  section: { begin: string; end: string; heading: string; markdown: string };
};

/** The file name this run's outputs share, without extension: `soak-2026-12-03T15-00-00`, `soak-partial-…`. */
export function resultsBaseName(kind: string, smoke: boolean, complete: boolean, startedAt: Date): string {
  const stamp = startedAt.toISOString().slice(0, 19).replaceAll(":", "-");
  return smoke ? `${kind}-smoke-latest` : complete ? `${kind}-${stamp}` : `${kind}-partial-${stamp}`;
}

/** Writes the JSON (and, for a complete run, the RESULTS.md section); returns the JSON's path. */
export function writeResults(output: ResultsOutput): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const name = `${resultsBaseName(output.kind, output.smoke, output.complete, output.startedAt)}.json`;
  const file = fileURLToPath(new URL(name, RESULTS_DIR));
  writeFileSync(file, `${JSON.stringify(output.json, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
  if (output.complete) {
    writeSection(output.section, `results/${name}`);
    process.stderr.write(`wrote ${fileURLToPath(new URL("./RESULTS.md", BENCH_DIR))}\n`);
  }
  return file;
}

function writeSection(section: ResultsOutput["section"], json: string): void {
  const path = new URL("./RESULTS.md", BENCH_DIR);
  const current = existsSync(path) ? readFileSync(path, "utf8") : "";
  const body = `${section.begin}\n${section.markdown}\n\nRaw figures: \`bench/${json}\`.\n${section.end}`;
  const begin = current.indexOf(section.begin);
  const end = current.indexOf(section.end);
  const next =
    begin !== -1 && end > begin
      ? current.slice(0, begin) + body + current.slice(end + section.end.length)
      : `${current.trimEnd()}\n\n## ${section.heading}\n\n${body}\n`;
  writeFileSync(path, next);
}
