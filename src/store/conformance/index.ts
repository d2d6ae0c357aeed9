/**
 * The store conformance suite: one list of behaviours every Store driver must show, run by each driver's own
 * test file (`describeStoreConformance("sqlite", factory)`). It talks to the Store interface only, so the
 * same cases hold the SQLite and the PostgreSQL drivers to the same contract. The cases live one file per group
 * of operations beside this one; helpers.ts holds what they share.
 *
 * `makeStore` must return a fresh, migrated, empty store each time it is called, and two stores it returns
 * must not share data (a PostgreSQL factory gives each one its own schema or database).
 * Time is never read from the clock: every operation gets an explicit `now` derived from T0.
 */
import { describe, test } from "node:test";
import type { Store } from "../store.ts";
import { cancelRerunCases } from "./cancel-rerun.ts";
import { claimCases } from "./claims.ts";
import { completionCases } from "./completion.ts";
import { dashboardCases } from "./dashboard.ts";
import { dispatchCases } from "./dispatch.ts";
import { eventLogCases } from "./events.ts";
import type { StoreTest } from "./helpers.ts";
import { insertCases } from "./inserts.ts";
import { keyCases } from "./keys.ts";
import { leaseCases } from "./leases.ts";
import { lifecycleCases } from "./lifecycle.ts";
import { liveLogCases } from "./live-log.ts";
import { nodeCases } from "./nodes.ts";
import { promotionCases } from "./promotion.ts";
import { pruningCases } from "./pruning.ts";
import { queueCases } from "./queues.ts";
import { readCases } from "./reads.ts";
import { rescueReleaseCases } from "./rescue-release.ts";
import { scheduleCases } from "./schedules.ts";

export function describeStoreConformance(name: string, makeStore: () => Promise<Store>): void {
  const storeTest: StoreTest = (title, body) => {
    test(title, async () => {
      const store = await makeStore();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  };

  describe(`store conformance: ${name}`, () => {
    lifecycleCases(storeTest, makeStore);
    insertCases(storeTest);
    keyCases(storeTest);
    readCases(storeTest);
    claimCases(storeTest);
    completionCases(storeTest);
    promotionCases(storeTest);
    cancelRerunCases(storeTest);
    rescueReleaseCases(storeTest);
    pruningCases(storeTest);
    queueCases(storeTest);
    eventLogCases(storeTest);
    liveLogCases(storeTest, makeStore);
    nodeCases(storeTest);
    leaseCases(storeTest);
    scheduleCases(storeTest);
    dashboardCases(storeTest);
    dispatchCases(storeTest);
  });
}
