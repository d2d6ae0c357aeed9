/**
 * The store under the scale bench's `conveyor start` nodes, and what it holds as the nodes' HTTP API reports it.
 * Each set-up gets a fresh store: a SQLite file in a temp folder, or a PostgreSQL schema of its own; both are gone
 * afterwards, whatever happened.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PG_URL, schemaName } from "../lib/env.ts";

export type StoreKind = "sqlite" | "postgres";
/** What `startCliNode` takes to reach the store. */
export type StorePlace = { database: string; schema?: string };

export const STORE_LABEL: Record<StoreKind, string> = { sqlite: "SQLite", postgres: "PostgreSQL" };

export async function withFreshStore<T>(kind: StoreKind, label: string, use: (place: StorePlace) => Promise<T>) {
  const dir = mkdtempSync(join(tmpdir(), `conveyor-bench-scale-${label}-`));
  const schema = schemaName(`scale_${label}`, Date.now().toString(36));
  try {
    return await use(kind === "sqlite" ? { database: join(dir, "conveyor.db") } : { database: PG_URL, schema });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (kind === "postgres") await dropSchema(schema);
  }
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Tasks per state over every queue, from GET /api/queues (the store's counts, not a node's memory). */
export async function taskCounts(baseUrl: string): Promise<Record<string, number>> {
  const response = await fetch(`${baseUrl}/api/queues`, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`GET /api/queues answered ${response.status}`);
  const body = (await response.json()) as { queues: { counts: Record<string, number> }[] };
  const counts: Record<string, number> = {};
  for (const queue of body.queues)
    for (const [state, n] of Object.entries(queue.counts)) counts[state] = (counts[state] ?? 0) + n;
  return counts;
}

export function totalOf(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Asks every 100 ms until `done` holds (returns the counts) or the time is up (returns the last counts read). */
export async function waitForCounts(
  baseUrl: string,
  done: (counts: Record<string, number>) => boolean,
  timeoutMs: number,
): Promise<{ counts: Record<string, number>; reached: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await taskCounts(baseUrl);
    if (done(counts)) return { counts, reached: true };
    if (Date.now() > deadline) return { counts, reached: false };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
