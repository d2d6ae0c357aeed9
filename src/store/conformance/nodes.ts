/**
 * Conformance cases for node rows: nodeHeartbeat inserts and refreshes every field, nodeList lists them, nodeRemove and
 * nodePrune delete them.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { NodeRecord } from "../store.ts";
import { at, type StoreTest } from "./helpers.ts";

export function nodeCases(storeTest: StoreTest): void {
  describe("nodes", () => {
    const record = (
      id: string,
      overrides: Partial<Omit<NodeRecord, "heartbeatAt">> = {},
    ): Omit<NodeRecord, "heartbeatAt"> => ({
      id,
      name: `name-${id}`,
      host: "host-1",
      pid: 4242,
      version: "1.2.3",
      roles: ["worker", "leader"],
      startedAt: at(-100),
      info: { concurrency: 10, tree: [{ name: "Heartbeat", restarts: 0 }], label: "ü" },
      ...overrides,
    });

    storeTest("heartbeat inserts a node row and refreshes its heartbeat, roles and info", async (store) => {
      assert.deepEqual(await store.nodeList(), []);
      await store.nodeHeartbeat({ node: record("a"), now: at(1) });
      assert.deepEqual(await store.nodeList(), [{ ...record("a"), heartbeatAt: at(1) }]);

      const refreshed = record("a", { info: { concurrency: 20 }, roles: ["worker"] });
      await store.nodeHeartbeat({ node: refreshed, now: at(5) });
      await store.nodeHeartbeat({ node: record("b", { roles: [] }), now: at(6) });
      const nodes = [...(await store.nodeList())].sort((x, y) => x.id.localeCompare(y.id));
      assert.deepEqual(nodes, [
        { ...refreshed, heartbeatAt: at(5) },
        { ...record("b", { roles: [] }), heartbeatAt: at(6) },
      ]);
    });

    storeTest("a heartbeat refreshes every field (a node restarted under the same id)", async (store) => {
      await store.nodeHeartbeat({ node: record("a"), now: at(1) });
      // Same id, new process: the dashboard's version notice and the supervision view need the new values.
      const restarted = record("a", {
        name: "renamed",
        host: "host-2",
        pid: 777,
        version: "1.2.4",
        startedAt: at(3),
      });
      await store.nodeHeartbeat({ node: restarted, now: at(4) });
      assert.deepEqual(await store.nodeList(), [{ ...restarted, heartbeatAt: at(4) }]);
    });

    storeTest("nodeRemove and nodePrune delete rows", async (store) => {
      await store.nodeHeartbeat({ node: record("old1"), now: at(1) });
      await store.nodeHeartbeat({ node: record("old2"), now: at(2) });
      await store.nodeHeartbeat({ node: record("fresh"), now: at(50) });
      await store.nodeHeartbeat({ node: record("gone"), now: at(50) });
      await store.nodeRemove({ id: "gone" });
      await store.nodeRemove({ id: "never-existed" });
      assert.deepEqual((await store.nodeList()).map((n) => n.id).sort(), ["fresh", "old1", "old2"]);
      assert.equal(await store.nodePrune({ before: at(10) }), 2);
      assert.deepEqual(
        (await store.nodeList()).map((n) => n.id),
        ["fresh"],
      );
      assert.equal(await store.nodePrune({ before: at(10) }), 0);
    });
  });
}
