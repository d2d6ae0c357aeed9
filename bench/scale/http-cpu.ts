/**
 * Where the CPU went while the producers ran: the nodes' processes, PostgreSQL (all its backends) and the producers'
 * own process. On a machine of 2 cores that is the limit of every figure, so the table gives it per task added.
 */
import { readFileSync } from "node:fs";
import { type CpuSample, sampleCpu, serverCpuSeconds } from "../lib/quiet.ts";

export type CpuMark = { nodes: number; machine: CpuSample; own: number };
export type CpuSpent = { nodes: number; servers: number | null; producers: number };

export function markCpu(pids: number[]): CpuMark {
  const own = process.cpuUsage();
  return {
    nodes: pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
    machine: sampleCpu(),
    own: (own.user + own.system) / 1e6,
  };
}

export function cpuSince(before: CpuMark, pids: number[]): CpuSpent {
  const after = markCpu(pids);
  return {
    nodes: after.nodes - before.nodes,
    servers: serverCpuSeconds(before.machine, after.machine),
    producers: after.own - before.own,
  };
}

/** User + system CPU seconds of a process so far, from /proc (Linux); 0 elsewhere. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
