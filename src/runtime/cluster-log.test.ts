/**
 * The cluster log's writing against a store that fails: best effort while the node runs (a failed append is logged
 * and the next one is tried), and at most one failed append once it is stopping, so that a node stopped during an
 * outage does not wait out the store's timeout once per event its services emit on their way down.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { StoreUnavailableError } from "../core/store-unavailable.ts";
import type { Store } from "../store/store.ts";
import { writeClusterEvents } from "./cluster-log.ts";
import { NodeEvents } from "./node-events.ts";
import type { Notifier } from "./notifier.ts";

function failingLog(stopping: () => boolean, error: Error = new StoreUnavailableError("PostgreSQL did not answer")) {
  const appends: number[] = [];
  const warnings: string[] = [];
  const store = {
    async eventAppend({ events }: { events: unknown[] }) {
      appends.push(events.length);
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw error;
    },
  } as unknown as Store;
  const events = new NodeEvents(() => {});
  const stop = writeClusterEvents({
    store,
    notifier: { eventsWritten() {} } as unknown as Notifier,
    events,
    nodeId: "n1",
    isLeader: () => true,
    isStopping: stopping,
    logger: { debug() {}, info() {}, error() {}, warn: (msg: string) => warnings.push(msg) },
  });
  const crash = (service: string) =>
    events.emit("service:crashed", { supervisor: "services", service, error: new Error("store down") });
  return { appends, warnings, stop, crash };
}

test("while the node runs, a failed append is logged and what came meanwhile is still tried", async () => {
  const log = failingLog(() => false);
  log.crash("a"); // the first append, at once
  log.crash("b"); // these two wait for it, and go out together next
  log.crash("c");
  assert.equal(await log.stop(), true);
  assert.deepEqual(log.appends, [1, 2]);
  assert.equal(log.warnings.length, 2);
});

test("once the node is stopping, the first failed append drops what is pending and what comes after", async () => {
  const log = failingLog(() => true);
  log.crash("a");
  log.crash("b");
  log.crash("c");
  const stopped = log.stop();
  log.crash("d"); // after the stop: no longer listened to
  assert.equal(await stopped, false, "the stop reports that the store would not take the events");
  assert.deepEqual(log.appends, [1], "one append waited for, not one per batch left");
  assert.deepEqual(log.warnings, [
    "the service.crashed event could not be written to the log",
    "stopping: 2 cluster events not written, the store is unavailable",
  ]);
});

test("stopping, an append that fails for another reason than the store's absence does not end the writing", async () => {
  const log = failingLog(() => true, new Error("value too long"));
  log.crash("a");
  log.crash("b");
  assert.equal(await log.stop(), true);
  assert.deepEqual(log.appends, [1, 1]);
});
