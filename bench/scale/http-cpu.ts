/**
 * Where the CPU went while the producers ran: the nodes' processes, PostgreSQL (all its backends) and the producers'
 * own process. On a machine of 2 cores that is the limit of every figure, so the table gives it per task added.
 */
import { type CpuSample, processCpuSeconds, sampleCpu, serverCpuSeconds } from "../lib/quiet.ts";

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
