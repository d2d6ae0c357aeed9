/**
 * The CPU the database server spent for one system's run: PostgreSQL's backends serving its nodes (found by their
 * application_name in pg_stat_activity, sampled twice a second, since a pool may open a connection mid-run), or
 * Redis (the whole server: the bench is its only user). Other people's work on the same PostgreSQL server is then
 * counted as theirs, not the system's.
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { PG_URL } from "../lib/env.ts";

const TICKS_PER_SECOND = 100;
const SAMPLE_EVERY_MS = 500;

export interface DbCpu {
  /** CPU seconds since start. */
  stop(): Promise<number>;
}

/** PostgreSQL backends whose application_name is one of `names`. */
export async function postgresBackendsCpu(names: string[]): Promise<DbCpu> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  const seen = new Map<number, { base: number; last: number }>();
  let first = true;
  const sample = async () => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1)",
      [names],
    );
    for (const { pid } of rows) {
      const ticks = ticksOf(pid);
      if (ticks === null) continue;
      // A backend already there at the start counts from then; one opened later, from its beginning.
      const known = seen.get(pid) ?? { base: first ? ticks : 0, last: ticks };
      known.last = ticks;
      seen.set(pid, known);
    }
    first = false;
  };
  await sample();
  const timer = setInterval(() => void sample().catch(() => {}), SAMPLE_EVERY_MS);
  return {
    async stop() {
      clearInterval(timer);
      await sample().catch(() => {});
      await client.end().catch(() => {});
      let ticks = 0;
      for (const { base, last } of seen.values()) ticks += last - base;
      return round2(ticks / TICKS_PER_SECOND);
    },
  };
}

/** Every process named `comm` (redis-server). */
export function processesCpu(comm: string): DbCpu {
  const total = () => {
    let ticks = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid) || commOf(Number(pid)) !== comm) continue;
      ticks += ticksOf(Number(pid)) ?? 0;
    }
    return ticks;
  };
  const base = total();
  return { stop: async () => round2((total() - base) / TICKS_PER_SECOND) };
}

function stat(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone, or not Linux
  }
}

function commOf(pid: number): string | null {
  const text = stat(pid);
  return text === null ? null : text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
}

/** utime + stime of one process, in clock ticks. */
function ticksOf(pid: number): number | null {
  const text = stat(pid);
  if (text === null) return null;
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
