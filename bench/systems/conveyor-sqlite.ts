/**
 * Conveyor on its embedded SQLite store: a fresh database file in a temporary folder. The producer is a node
 * on the same file with a SqliteStore of its own (its in-process bus reaches no other node: the workers see its
 * commits by the file's data_version, checked every 20 ms, as a node in another process on the file would).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildJob } from "../lib/types.ts";
import { conveyorSystem } from "./conveyor.ts";

export function create(job: ChildJob) {
  return conveyorSystem(
    {
      name: "conveyor-sqlite",
      kind: "conveyor",
      store: "sqlite",
      settings: `new Conveyor({ database: <fresh temp file>, concurrency: ${job.concurrency} }); defaults otherwise (claim batch 50, WAL, synchronous=NORMAL)`,
      drainPaths: `producer: a second Conveyor on the same file, never started (its own SqliteStore; the workers see its commits within 20 ms by PRAGMA data_version, and share the file's one write lock with it); self: enqueueMany on the started node; pause: pauseQueue / resumeQueue("default")`,
    },
    job,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "conveyor-bench-"));
      const database = join(dir, "bench.db");
      return {
        options: { database },
        // The node opens the store for a path, and closes it when it stops.
        producer: async () => ({ options: { database }, close: async () => {} }),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  );
}
