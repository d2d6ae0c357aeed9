/** Conveyor on its embedded SQLite store: a fresh database file in a temporary folder. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildJob } from "../lib/types.ts";
import { conveyorSystem } from "./conveyor.ts";

export function create(job: ChildJob) {
  return conveyorSystem(
    {
      name: "conveyor-sqlite", kind: "conveyor", store: "sqlite",
      settings: `new Conveyor({ database: <fresh temp file>, concurrency: ${job.concurrency} }); defaults otherwise (claim batch 50, WAL, synchronous=NORMAL)`,
    },
    job,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "conveyor-bench-"));
      return {
        options: { database: join(dir, "bench.db") },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  );
}
