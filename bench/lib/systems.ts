/** The systems a run covers, in the order they run: each store's physical limit first, then what runs on it. */
import type { StoreName, SystemKind } from "./types.ts";

export type SystemEntry = { name: string; kind: SystemKind; store: StoreName };

export const SYSTEMS: readonly SystemEntry[] = [
  { name: "sqlite-raw", kind: "raw", store: "sqlite" },
  { name: "conveyor-sqlite", kind: "conveyor", store: "sqlite" },
  { name: "postgres-raw", kind: "raw", store: "postgres" },
  { name: "conveyor-postgres", kind: "conveyor", store: "postgres" },
  { name: "bullmq", kind: "peer", store: "redis" },
  { name: "pg-boss", kind: "peer", store: "postgres" },
  { name: "graphile-worker", kind: "peer", store: "postgres" },
];

export function systemEntry(name: string): SystemEntry | undefined {
  return SYSTEMS.find((s) => s.name === name);
}
