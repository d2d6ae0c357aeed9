/**
 * Summarises a .cpuprofile (from `npm run bench -- --cpu-prof <system>`, or `node --cpu-prof`): self time
 * per function and per source file, heaviest first. A native function is shown with its JavaScript caller
 * (`get ← #insert`), since node:sqlite's `get`/`all`/`run` are where SQLite itself spends its time.
 *
 *   node bench/profile.ts bench/results/profiles/conveyor-sqlite-drain.cpuprofile [--top 25]
 */
import { readFileSync } from "node:fs";

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type Profile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

export type SelfTime = { name: string; where: string; ms: number; share: number };

export function summarise(profile: Profile): { totalMs: number; functions: SelfTime[]; files: SelfTime[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample: it belongs to the sample before i.
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const functions = new Map<string, SelfTime>();
  const files = new Map<string, SelfTime>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const file = shortUrl(frame.url);
    let name = frame.functionName || "(anonymous)";
    let where = file === "" ? "" : `${file}:${frame.lineNumber + 1}`;
    // A native function (node:sqlite's get/all/run/exec, …) says little alone: name its JavaScript caller.
    const caller = file === "" && !name.startsWith("(") ? byId.get(parentOf.get(id) ?? -1)?.callFrame : undefined;
    if (caller !== undefined) {
      name = `${name} ← ${caller.functionName || "(anonymous)"}`;
      where = caller.url === "" ? "" : `${shortUrl(caller.url)}:${caller.lineNumber + 1}`;
    }
    const key = `${name} ${where}`;
    const f = functions.get(key) ?? { name, where, ms: 0, share: 0 };
    f.ms += us / 1000;
    functions.set(key, f);
    const fileKey = file === "" ? `${frame.functionName || "(anonymous)"} (native)` : file;
    const g = files.get(fileKey) ?? { name: fileKey, where: "", ms: 0, share: 0 };
    g.ms += us / 1000;
    files.set(fileKey, g);
  }
  const finish = (map: Map<string, SelfTime>) =>
    [...map.values()]
      .map((x) => ({ ...x, ms: Math.round(x.ms * 10) / 10, share: x.ms / (total / 1000) }))
      .sort((a, b) => b.ms - a.ms);
  return { totalMs: Math.round(total / 1000), functions: finish(functions), files: finish(files) };
}

function shortUrl(url: string): string {
  if (url === "") return "";
  const marks = ["/node_modules/", "/src/", "/bench/"];
  for (const mark of marks) {
    const at = url.lastIndexOf(mark);
    if (at !== -1) return url.slice(at + 1);
  }
  return url.replace(/^file:\/\//, "");
}

export function formatSummary(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const { totalMs, functions, files } = summarise(profile);
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  const lines = [`${file}: ${totalMs} ms sampled`, "", "self time by function:"];
  for (const f of functions.slice(0, top))
    lines.push(`${pct(f.share)} ${String(f.ms).padStart(8)} ms  ${f.name}  ${f.where}`);
  lines.push("", "self time by file:");
  for (const f of files.slice(0, Math.ceil(top / 2)))
    lines.push(`${pct(f.share)} ${String(f.ms).padStart(8)} ms  ${f.name}`);
  return `${lines.join("\n")}\n`;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt === -1 ? 25 : Number(args[topAt + 1]);
  const files = args.filter((a, i) => !a.startsWith("--") && (topAt === -1 || i !== topAt + 1));
  if (files.length === 0) {
    process.stderr.write("usage: node bench/profile.ts <file.cpuprofile>... [--top N]\n");
    process.exit(2);
  }
  for (const file of files) process.stdout.write(`${formatSummary(file, top)}\n`);
}
