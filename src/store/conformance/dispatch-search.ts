/**
 * Conformance cases for dispatch's searches: messages by topic, attribute, payload words, time range and delivery
 * state, alone and together, newest first, paged by cursor without a message missed or shown twice; and deliveries
 * by state and publisher.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Message, MessageSearch } from "../dispatch-store.ts";
import type { Store } from "../store.ts";
import { at, type StoreTest } from "./helpers.ts";
import { attemptAt, message, publisher, send, TASK, topic } from "./dispatch-helpers.ts";

/** Every page of a search, `size` at a time, following the cursor. */
async function allPages(
  store: Store,
  search: Omit<MessageSearch, "limit" | "before">,
  size: number,
): Promise<number[]> {
  const ids: number[] = [];
  let before: MessageSearch["before"];
  for (let page = 0; page < 100; page++) {
    const found: Message[] = await store.dispatch.messageSearch({ ...search, before, limit: size });
    ids.push(...found.map((m) => m.id));
    if (found.length < size) return ids;
    const last = found.at(-1)!;
    before = { receivedAt: last.receivedAt, id: last.id };
  }
  throw new Error("the pages never ended");
}

export function dispatchSearchCases(storeTest: StoreTest): void {
  describe("dispatch search", () => {
    /**
     * Two topics; messages 1..12 one second apart, several per second in a batch at 5 s. Odd messages have
     * attribute kind=odd; payloads hold words; the deliveries of messages 3 and 4 fail (two publishers on 3, one on 4).
     */
    async function fixture(store: Store) {
      const orders = await topic(store, "orders");
      const other = await topic(store, "other");
      const a = await publisher(store, orders.id, { target: "http://a.test/" });
      const b = await publisher(store, orders.id, { target: "http://b.test/" });
      await publisher(store, other.id, { target: "http://c.test/" });
      const ids: number[] = [];
      const deliveries = new Map<number, { id: number; publisherId: number }[]>();
      for (let n = 1; n <= 12; n++) {
        const t = n % 4 === 0 ? other : orders;
        const when = n >= 5 && n <= 7 ? at(5) : at(n);
        const attrs = { kind: n % 2 === 1 ? "odd" : "even", n };
        const { outcomes } = await send(store, t.id, [message({ text: `Order-${n} for Zoé`, n }, attrs)], when);
        ids.push(outcomes[0]!.message.id);
        deliveries.set(n, outcomes[0]!.deliveries);
      }
      const fail = async (n: number) => {
        for (const d of deliveries.get(n)!) {
          const work = (await store.dispatch.deliveryWork({ id: d.id }))!;
          await store.dispatch.deliveryRecord({
            record: {
              deliveryId: d.id,
              generation: work.delivery.generation,
              attempt: attemptAt(at(20), 500),
              outcome: "failed",
              nextAttemptAt: null,
              disablePublisher: null,
            },
            now: at(20),
          });
        }
      };
      await fail(3);
      await fail(4);
      return { orders, other, a, b, ids, deliveries };
    }

    const m = (ids: number[], ...ns: number[]) => ns.map((n) => ids[n - 1]!);

    storeTest("newest first, every filter alone, paged without a miss or a repeat", async (store) => {
      const { orders, ids } = await fixture(store);
      const everything = [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
      assert.deepEqual(await allPages(store, {}, 5), m(ids, ...everything));
      assert.deepEqual(await allPages(store, {}, 2), m(ids, ...everything), "a page boundary inside one second");
      assert.deepEqual(await allPages(store, { topicId: orders.id }, 3), m(ids, 11, 10, 9, 7, 6, 5, 3, 2, 1));
      assert.deepEqual(
        await allPages(store, { attribute: { key: "kind", value: "odd" } }, 2),
        m(ids, 11, 9, 7, 5, 3, 1),
      );
      assert.deepEqual(
        await allPages(store, { attribute: { key: "n", value: "7" } }, 2),
        m(ids, 7),
        "a number as text",
      );
      assert.deepEqual(await allPages(store, { words: ["order", "7"] }, 2), m(ids, 7));
      assert.deepEqual(await allPages(store, { words: ["zoé"] }, 5), m(ids, ...everything), "letters beyond ASCII");
      assert.deepEqual(await allPages(store, { words: ["zoe"] }, 5), [], "diacritics are kept");
      assert.deepEqual(await allPages(store, { from: at(5), to: at(9) }, 2), m(ids, 8, 7, 6, 5));
      assert.deepEqual(await allPages(store, { state: "failed" }, 1), m(ids, 4, 3), "once per message");
      assert.equal((await allPages(store, { state: "delivered" }, 5)).length, 0);
      assert.equal((await allPages(store, { state: "pending" }, 4)).length, 10);
    });

    storeTest("filters together", async (store) => {
      const { orders, other, ids } = await fixture(store);
      assert.deepEqual(await allPages(store, { topicId: other.id, state: "failed" }, 5), m(ids, 4));
      assert.deepEqual(
        await allPages(store, { topicId: orders.id, attribute: { key: "kind", value: "even" }, from: at(2) }, 2),
        m(ids, 10, 6, 2),
      );
      assert.deepEqual(
        await allPages(store, { words: ["order"], attribute: { key: "kind", value: "odd" }, to: at(6) }, 2),
        m(ids, 7, 5, 3, 1),
      );
      assert.deepEqual(await allPages(store, { words: ["order"], state: "failed", topicId: orders.id }, 5), m(ids, 3));
      assert.deepEqual(
        await allPages(store, { state: "failed", attribute: { key: "kind", value: "odd" } }, 5),
        m(ids, 3),
      );
    });

    storeTest("deliveries by state, and by publisher, newest message first, paged", async (store) => {
      const { a, b, deliveries } = await fixture(store);
      const failed = [...deliveries.get(4)!, ...deliveries.get(3)!.toReversed()];
      const pages = async (publisherId?: number) => {
        const found: number[] = [];
        let before: { receivedAt: Date; messageId: number; publisherId: number } | undefined;
        for (;;) {
          const page = await store.dispatch.deliveryList({ state: "failed", publisherId, before, limit: 1 });
          found.push(...page.map((d) => d.id));
          if (page.length < 1) return found;
          const last = page[0]!;
          before = { receivedAt: last.receivedAt, messageId: last.messageId, publisherId: last.publisherId };
        }
      };
      assert.deepEqual(
        await pages(),
        failed.map((d) => d.id),
      );
      assert.deepEqual(
        await pages(a.id),
        deliveries
          .get(3)!
          .filter((d) => d.publisherId === a.id)
          .map((d) => d.id),
      );
      assert.deepEqual(
        await pages(b.id),
        deliveries
          .get(3)!
          .filter((d) => d.publisherId === b.id)
          .map((d) => d.id),
      );
      const pending = await store.dispatch.deliveryList({ state: "pending", limit: 100 });
      assert.equal(pending.length, 9 * 2 + 3 - 3, "every delivery but the failed ones");
      assert.deepEqual(await store.dispatch.deliveryListForMessage({ messageId: -1 }), []);
      assert.equal(TASK.type, "dispatch.deliver");
    });
  });
}
