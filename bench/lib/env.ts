/** Where the servers are; overridable so the bench can point at other instances. */
export const PG_URL = process.env.BENCH_PG_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A PostgreSQL schema name that belongs to one system in one run (dropped afterwards). */
export function schemaName(system: string, runId: string): string {
  return `bench_${system.replace(/[^a-z0-9]/g, "_")}_${runId}`;
}
