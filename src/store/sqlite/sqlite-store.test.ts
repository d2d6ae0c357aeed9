/**
 * The SQLite driver against the store conformance suite: each test gets its own database file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { describeStoreConformance } from "../conformance.ts";
import { SqliteStore } from "./sqlite-store.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describeStoreConformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-sqlite-"));
  dirs.push(dir);
  const store = new SqliteStore({ path: join(dir, "conveyor.db") });
  await store.migrate();
  return store;
});
