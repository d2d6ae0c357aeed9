import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  ACTIVE_STATES,
  canTransition,
  emptyCounts,
  FINAL_STATES,
  isFinalState,
  isTaskState,
  TASK_STATES,
  TRANSITIONS,
} from "./states.ts";

test("docs/states.md lists exactly the transitions of the code's table", () => {
  const doc = readFileSync(new URL("../../docs/states.md", import.meta.url), "utf8");
  const rows = doc
    .split("\n")
    .filter((line) => /^\| [a-z]+ \| [a-z, ]+ \| [a-z]+ \|/.test(line) && !line.startsWith("| transition |"));
  const documented = Object.fromEntries(
    rows.map((row) => {
      const [name, from, to] = row
        .split("|")
        .slice(1, 4)
        .map((cell) => cell.trim());
      return [name, { from: from!.split(",").map((s) => s.trim()), to }];
    }),
  );
  const code = Object.fromEntries(
    Object.entries(TRANSITIONS).map(([name, t]) => [name, { from: [...t.from], to: t.to }]),
  );
  assert.deepEqual(documented, code);
});

test("every state is either active or final, never both", () => {
  for (const state of TASK_STATES) {
    assert.notEqual(ACTIVE_STATES.includes(state), FINAL_STATES.includes(state), state);
    assert.equal(isFinalState(state), FINAL_STATES.includes(state));
  }
});

test("final states can only be left by rerun", () => {
  for (const [name, transition] of Object.entries(TRANSITIONS)) {
    const leavesFinal = transition.from.some((state) => isFinalState(state));
    assert.equal(leavesFinal, name === "rerun", name);
  }
});

test("canTransition follows the table", () => {
  assert.equal(canTransition("claim", "queued"), true);
  assert.equal(canTransition("claim", "scheduled"), false);
  assert.equal(canTransition("complete", "running"), true);
  assert.equal(canTransition("complete", "queued"), false);
  assert.equal(canTransition("cancel", "completed"), false);
  assert.equal(canTransition("rerun", "failed"), true);
  assert.equal(canTransition("rerun", "running"), false);
});

test("isTaskState accepts the six states only", () => {
  for (const state of TASK_STATES) assert.ok(isTaskState(state));
  for (const value of ["", "done", "RUNNING", 1, null, undefined]) assert.equal(isTaskState(value), false);
});

test("emptyCounts has a zero for each of the six states, and a new object each call", () => {
  const counts = emptyCounts();
  assert.deepEqual(Object.keys(counts), [...TASK_STATES]);
  for (const state of TASK_STATES) assert.equal(counts[state], 0);
  counts.queued = 5;
  assert.equal(emptyCounts().queued, 0);
});
