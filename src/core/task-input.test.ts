import { test } from "node:test";
import assert from "node:assert/strict";
import { ValidationError } from "./errors.ts";
import type { Json, TaskInput } from "./task.ts";
import { isJson, MAX_DURATION_MS, MAX_KEY_LENGTH, normalizeTaskInput, type TaskDefaults } from "./task-input.ts";

const NOW = new Date("2026-01-01T00:00:00.000Z");
const GLOBAL: TaskDefaults = { queue: "default", priority: 0, maxAttempts: 3, timeoutMs: null };
const TYPED: TaskDefaults = { queue: "mail", priority: 7, maxAttempts: 5, timeoutMs: 30_000 };
const defaults = (type: string) => (type === "email.send" ? TYPED : GLOBAL);
const normalize = (input: TaskInput) => normalizeTaskInput(input, defaults, NOW);

/** Asserts the input is refused, naming `field` among the problems. */
function refuses(input: TaskInput, field: string) {
  assert.throws(
    () => normalize(input),
    (error: unknown) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.equal(error.code, "validation_failed");
      const fields = (error.details as { field: string }[]).map((p) => p.field);
      assert.ok(
        fields.includes(field),
        `expected a problem with ${field}, got ${fields.join(", ")} (${error.message})`,
      );
      return true;
    },
    `${field} should be refused`,
  );
}

test("fills every default from the global defaults for an unknown type", () => {
  assert.deepEqual(normalize({ type: "anything" }), {
    queue: "default",
    type: "anything",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: NOW,
    key: null,
    timeoutMs: null,
    backoffMs: null,
  });
});

test("takes the defaults of the task's type", () => {
  assert.deepEqual(normalize({ type: "email.send", data: { to: "a@b.c" } }), {
    queue: "mail",
    type: "email.send",
    data: { to: "a@b.c" },
    priority: 7,
    maxAttempts: 5,
    runAt: NOW,
    key: null,
    timeoutMs: 30_000,
    backoffMs: null,
  });
});

test("given values override the type's defaults, including null for timeoutMs", () => {
  const out = normalize({
    type: "email.send",
    queue: "urgent",
    priority: -2,
    maxAttempts: 1,
    timeoutMs: null,
    backoffMs: 250,
    key: "k1",
  });
  assert.equal(out.queue, "urgent");
  assert.equal(out.priority, -2);
  assert.equal(out.maxAttempts, 1);
  assert.equal(out.timeoutMs, null);
  assert.equal(out.backoffMs, 250);
  assert.equal(out.key, "k1");
  assert.equal(normalize({ type: "email.send", timeoutMs: 5 }).timeoutMs, 5);
  assert.equal(normalize({ type: "email.send", key: null }).key, null);
});

test("delay and runAt set runAt; runAt may be in the past", () => {
  assert.equal(normalize({ type: "t", delay: 1500 }).runAt.getTime(), NOW.getTime() + 1500);
  assert.equal(normalize({ type: "t", delay: 0 }).runAt.getTime(), NOW.getTime());
  const at = new Date("2027-05-05T05:05:05Z");
  assert.equal(normalize({ type: "t", runAt: at }).runAt.getTime(), at.getTime());
  const past = new Date("2020-01-01T00:00:00Z");
  assert.equal(normalize({ type: "t", runAt: past }).runAt.getTime(), past.getTime());
  assert.equal(normalize({ type: "t", delay: MAX_DURATION_MS }).runAt.getTime(), NOW.getTime() + MAX_DURATION_MS);
});

test("type: a name of letters, digits and _ . : -, 1 to 128 characters", () => {
  for (const type of ["a", "email.send", "A_b-c:d.e", "9", "x".repeat(128)])
    assert.equal(normalize({ type }).type, type);
  for (const type of ["", "has space", "slash/no", "ünïcode", "x".repeat(129), 42, null, undefined]) {
    refuses({ type } as unknown as TaskInput, "type");
  }
});

test("queue: same rule as type", () => {
  assert.equal(normalize({ type: "t", queue: "q.1:a-b_c" }).queue, "q.1:a-b_c");
  for (const queue of ["", "a b", "a/b", "q".repeat(129), 5])
    refuses({ type: "t", queue } as unknown as TaskInput, "queue");
});

test("priority: an integer within ±1,000,000", () => {
  for (const priority of [-1_000_000, -1, 0, 1, 1_000_000])
    assert.equal(normalize({ type: "t", priority }).priority, priority);
  for (const priority of [1.5, Number.NaN, Infinity, 1_000_001, -1_000_001, "1"]) {
    refuses({ type: "t", priority } as unknown as TaskInput, "priority");
  }
});

test("maxAttempts: an integer from 1 to 1000", () => {
  for (const maxAttempts of [1, 2, 1000]) assert.equal(normalize({ type: "t", maxAttempts }).maxAttempts, maxAttempts);
  for (const maxAttempts of [0, -1, 1.5, 1001, Number.NaN, "3"]) {
    refuses({ type: "t", maxAttempts } as unknown as TaskInput, "maxAttempts");
  }
});

test("timeoutMs: null or an integer from 1 ms to one year", () => {
  for (const timeoutMs of [1, 1000, MAX_DURATION_MS])
    assert.equal(normalize({ type: "t", timeoutMs }).timeoutMs, timeoutMs);
  for (const timeoutMs of [0, -1, 1.5, MAX_DURATION_MS + 1, Number.NaN, Infinity, "10"]) {
    refuses({ type: "t", timeoutMs } as unknown as TaskInput, "timeoutMs");
  }
});

test("backoffMs: null or an integer from 0 ms to one year", () => {
  for (const backoffMs of [0, 10, MAX_DURATION_MS])
    assert.equal(normalize({ type: "t", backoffMs }).backoffMs, backoffMs);
  for (const backoffMs of [-1, 0.5, MAX_DURATION_MS + 1, Number.NaN, "5"]) {
    refuses({ type: "t", backoffMs } as unknown as TaskInput, "backoffMs");
  }
});

test("key: null or a string of 1 to 255 characters", () => {
  assert.equal(normalize({ type: "t", key: "k".repeat(MAX_KEY_LENGTH) }).key, "k".repeat(MAX_KEY_LENGTH));
  assert.equal(normalize({ type: "t", key: "any chars / é ✓" }).key, "any chars / é ✓");
  for (const key of ["", "k".repeat(MAX_KEY_LENGTH + 1), 7, {}])
    refuses({ type: "t", key } as unknown as TaskInput, "key");
});

test("delay: an integer number of ms from 0 to one year; runAt: a valid Date; not both", () => {
  for (const delay of [-1, 1.5, Number.NaN, Infinity, MAX_DURATION_MS + 1, "10"]) {
    refuses({ type: "t", delay } as unknown as TaskInput, "delay");
  }
  for (const runAt of [new Date("nope"), "2030-01-01", 1_700_000_000_000, null]) {
    refuses({ type: "t", runAt } as unknown as TaskInput, "runAt");
  }
  refuses({ type: "t", runAt: NOW, delay: 5 }, "runAt");
});

test("data: JSON only", () => {
  const ok: Json[] = [null, 0, -1.5, "s", true, [], {}, [1, "a", null, { b: [false] }], { nested: { deep: { x: 1 } } }];
  for (const data of ok) assert.deepEqual(normalize({ type: "t", data }).data, data);
  assert.equal(normalize({ type: "t", data: undefined }).data, null);
  const cyclic: Record<string, unknown> = {};
  cyclic.me = cyclic;
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  const bad = [
    () => 1,
    Number.NaN,
    Infinity,
    -Infinity,
    1n,
    Symbol("s"),
    new Date(),
    new Map(),
    new Set(),
    /re/,
    new (class Point {
      x = 1;
    })(),
    { f: () => 1 },
    { n: Number.NaN },
    [undefined],
    { u: undefined },
    cyclic,
    deep,
    new Uint8Array(2),
  ];
  for (const data of bad) refuses({ type: "t", data } as unknown as TaskInput, "data");
});

test("every problem is reported at once, each naming its field", () => {
  assert.throws(
    () => normalize({ type: "bad type", queue: "", priority: 0.5, maxAttempts: 0, key: "", data: { n: Number.NaN } }),
    (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual((error.details as { field: string }[]).map((p) => p.field).sort(), [
        "data",
        "key",
        "maxAttempts",
        "priority",
        "queue",
        "type",
      ]);
      assert.match(error.message, /type must match/);
      return true;
    },
  );
});

test("a bad type does not consult the type's defaults", () => {
  const asked: string[] = [];
  assert.throws(
    () => normalizeTaskInput({ type: "bad type" }, (type) => (asked.push(type), GLOBAL), NOW),
    ValidationError,
  );
  assert.ok(!asked.includes("bad type"));
});

test("isJson: plain objects and arrays only (not null-prototype objects or class instances)", () => {
  assert.equal(isJson({ a: 1 }), true);
  assert.equal(isJson(Object.create(null)), false);
  assert.equal(isJson([[[]]]), true);
});

test("data with a NUL character is refused: PostgreSQL's jsonb cannot store it", () => {
  assert.equal(isJson({ text: "a\u0000b" }), false);
  assert.equal(isJson({ "k\u0000": 1 }), false);
  assert.equal(isJson(["ok", "\u0000"]), false);
  assert.equal(isJson({ text: "a\\u0000b is only text" }), true);
});
