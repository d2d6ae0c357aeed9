/**
 * How much CPU the rest of the machine used while one system ran: everything busy on the machine, less
 * the system's own process, PostgreSQL and Redis. The CEO's baseline counts a run as quiet when this is
 * under 1 CPU-second; a noisy run is flagged in the table rather than silently reported low.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)
const SERVERS = new Set(["postgres", "redis-server"]);

export type CpuSample = { busy: number; servers: number } | null;

export function sampleCpu(): CpuSample {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number) as number[];
    const busy = (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
    return { busy, servers: serverSeconds() };
  } catch {
    return null; // not Linux: no figure
  }
}

/** CPU seconds of PostgreSQL and Redis, their reaped children (PostgreSQL's finished backends) included. */
function serverSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (!SERVERS.has(comm) && !comm.startsWith("postgres")) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is state (field 3); utime, stime, cutime, cstime are fields 14–17.
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** User + system CPU seconds of one process so far (0 when it is gone, or not on Linux). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds used by everything else between two samples, given the system's own CPU seconds. */
export function otherCpuSeconds(before: CpuSample, after: CpuSample, ownSeconds: number): number | null {
  if (before === null || after === null) return null;
  const other = after.busy - before.busy - (after.servers - before.servers) - ownSeconds;
  return Math.max(0, Math.round(other * 100) / 100);
}

/** CPU seconds PostgreSQL and Redis used between two samples (whoever asked them). */
export function serverCpuSeconds(before: CpuSample, after: CpuSample): number | null {
  if (before === null || after === null) return null;
  return Math.round((after.servers - before.servers) * 100) / 100;
}

/**
 * Waits (up to `maxSeconds`) until the machine is quiet: less than `busyLimit` CPUs busy over one second,
 * PostgreSQL and Redis included (between two systems nothing of the bench runs). Returns the seconds waited,
 * or null when it gave up.
 */
export async function waitForQuiet(maxSeconds: number, busyLimit = 0.15): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started < maxSeconds * 1000) {
    const before = sampleCpu();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = sampleCpu();
    if (before === null || after === null) return 0;
    if (after.busy - before.busy < busyLimit) return Math.round((Date.now() - started) / 1000);
  }
  return null;
}
