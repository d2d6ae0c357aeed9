/**
 * Conformance cases for what every store does before any task: report its capabilities, migrate (idempotently, also
 * when two migrators race), answer a ping, and keep its data apart from another store's.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Store } from "../store.ts";
import { insert, allTasks, type StoreTest } from "./helpers.ts";

export function lifecycleCases(storeTest: StoreTest, makeStore: () => Promise<Store>): void {
  describe("store", () => {
    storeTest("reports its capabilities", async (store) => {
      assert.equal(typeof store.capabilities.driver, "string");
      assert.ok(store.capabilities.driver.length > 0);
      assert.equal(typeof store.capabilities.multiHost, "boolean");
      assert.equal(typeof store.capabilities.notifications, "boolean");
    });

    storeTest("migrate is idempotent and migrationStatus lists every migration as applied", async (store) => {
      assert.deepEqual(await store.migrate(), { applied: [] });
      const concurrent = await Promise.all([store.migrate(), store.migrate()]);
      assert.deepEqual(concurrent, [{ applied: [] }, { applied: [] }]);
      const status = await store.migrationStatus();
      assert.ok(status.length > 0, "at least one migration");
      for (const m of status) assert.equal(m.applied, true, `${m.name} applied`);
      assert.equal(new Set(status.map((m) => m.name)).size, status.length, "migration names are unique");
    });

    storeTest("ping answers", async (store) => {
      await store.ping();
    });

    test("two stores from the factory do not share data", async () => {
      const a = await makeStore();
      try {
        const b = await makeStore();
        try {
          await insert(a, { key: "k" });
          assert.equal((await allTasks(a)).length, 1);
          assert.equal((await allTasks(b)).length, 0);
          assert.equal(await b.eventLastOffset(), 0);
          // The same key is free in the other store.
          await insert(b, { key: "k" });
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });
  });
}
