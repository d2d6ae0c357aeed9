/**
 * Conformance cases for cron schedules: upsert, list, get, delete, and scheduleFire, which inserts one task per tick
 * (once, even when fired concurrently) and none for a disabled or unknown schedule.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { ScheduleInput } from "../store.ts";
import { at, taskInput, type StoreTest } from "./helpers.ts";

export function scheduleCases(storeTest: StoreTest): void {
  describe("schedules", () => {
    const schedule = (name: string, extra: Partial<ScheduleInput> = {}): ScheduleInput => ({
      name,
      cron: "*/5 * * * * *",
      timezone: null,
      type: "t",
      data: { from: name },
      options: { queue: "cron" },
      enabled: true,
      ...extra,
    });

    storeTest("upsert creates, replaces by name and keeps lastTick; list, get, delete", async (store) => {
      const created = await store.scheduleUpsert({ schedule: schedule("b"), now: at(1) });
      assert.deepEqual(created, { ...schedule("b"), lastTick: null, createdAt: at(1), updatedAt: at(1) });
      await store.scheduleUpsert({ schedule: schedule("a"), now: at(1) });
      await store.scheduleFire({ name: "b", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) });
      const replaced = await store.scheduleUpsert({
        schedule: schedule("b", { cron: "0 * * * *", data: [1, 2], enabled: false }),
        now: at(6),
      });
      assert.deepEqual(replaced, {
        ...schedule("b", { cron: "0 * * * *", data: [1, 2], enabled: false }),
        lastTick: at(5),
        createdAt: at(1),
        updatedAt: at(6),
      });
      assert.deepEqual(
        (await store.scheduleList()).map((s) => s.name),
        ["a", "b"],
      );
      assert.deepEqual(await store.scheduleGet({ name: "b" }), replaced);
      assert.equal(await store.scheduleGet({ name: "zzz" }), null);
      assert.equal(await store.scheduleDelete({ name: "a" }), true);
      assert.equal(await store.scheduleDelete({ name: "a" }), false);
      assert.deepEqual(
        (await store.scheduleList()).map((s) => s.name),
        ["b"],
      );
    });

    storeTest("each tick fires once: the same or an earlier tick inserts nothing", async (store) => {
      await store.scheduleUpsert({ schedule: schedule("s"), now: at(0) });
      const first = await store.scheduleFire({
        name: "s",
        tick: at(5),
        task: taskInput({ queue: "cron", data: 5 }),
        now: at(5),
      });
      assert.equal(first?.created, true);
      assert.equal(first?.task.data, 5);
      assert.equal(
        await store.scheduleFire({ name: "s", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
        null,
      );
      assert.equal(
        await store.scheduleFire({ name: "s", tick: at(0), task: taskInput({ queue: "cron" }), now: at(6) }),
        null,
      );
      assert.equal(
        (await store.scheduleFire({ name: "s", tick: at(10), task: taskInput({ queue: "cron" }), now: at(10) }))
          ?.created,
        true,
      );
      assert.equal((await store.taskList({ queue: "cron", limit: 10, order: "asc" })).length, 2);
      assert.deepEqual((await store.scheduleGet({ name: "s" }))?.lastTick, at(10));
    });

    storeTest("a disabled or unknown schedule fires nothing", async (store) => {
      await store.scheduleUpsert({ schedule: schedule("off", { enabled: false }), now: at(0) });
      assert.equal(
        await store.scheduleFire({ name: "off", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
        null,
      );
      assert.equal(
        await store.scheduleFire({ name: "nope", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
        null,
      );
      assert.deepEqual(await store.taskList({ queue: "cron", limit: 10, order: "asc" }), []);
    });

    storeTest("concurrent fires of one tick insert exactly one task", async (store) => {
      await store.scheduleUpsert({ schedule: schedule("s"), now: at(0) });
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () =>
          store.scheduleFire({ name: "s", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
        ),
      );
      assert.equal(outcomes.filter((o) => o !== null).length, 1);
      assert.equal((await store.taskList({ queue: "cron", limit: 20, order: "asc" })).length, 1);
    });
  });
}
