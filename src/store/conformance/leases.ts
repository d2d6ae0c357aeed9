/**
 * Conformance cases for leases (leadership): a free or expired lease is taken, its holder renews and releases it, and
 * of concurrent takers exactly one wins.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { at, type StoreTest } from "./helpers.ts";

export function leaseCases(storeTest: StoreTest): void {
  describe("leases", () => {
    storeTest("a free lease is taken; the holder renews it; others wait until it expires", async (store) => {
      assert.equal(await store.leaseGet({ name: "leader" }), null);
      assert.equal(await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(0) }), true);
      assert.equal(
        await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(1) }),
        false,
        "held by a",
      );
      assert.equal(await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(4) }), true, "a renews");
      assert.deepEqual(await store.leaseGet({ name: "leader" }), { name: "leader", node: "a", expiresAt: at(9) });
      assert.equal(
        await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(8) }),
        false,
        "renewed: not expired yet",
      );
      assert.equal(
        await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(9) }),
        true,
        "expired: b takes it",
      );
      assert.equal(
        await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(10) }),
        false,
        "a lost it",
      );
      assert.equal(
        await store.leaseAcquire({ name: "other", node: "a", ttlMs: 5000, now: at(10) }),
        true,
        "leases are independent",
      );
    });

    storeTest("release frees the lease only for its holder", async (store) => {
      await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 60_000, now: at(0) });
      await store.leaseRelease({ name: "leader", node: "b" });
      assert.equal((await store.leaseGet({ name: "leader" }))?.node, "a");
      await store.leaseRelease({ name: "leader", node: "a" });
      assert.equal(await store.leaseGet({ name: "leader" }), null);
      assert.equal(await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 60_000, now: at(1) }), true);
    });

    storeTest("concurrent attempts: exactly one node wins", async (store) => {
      const nodes = Array.from({ length: 10 }, (_, i) => `n${i}`);
      const won = await Promise.all(
        nodes.map((node) => store.leaseAcquire({ name: "leader", node, ttlMs: 5000, now: at(0) })),
      );
      assert.equal(won.filter(Boolean).length, 1);
      assert.equal((await store.leaseGet({ name: "leader" }))?.node, nodes[won.indexOf(true)]);
    });
  });
}
