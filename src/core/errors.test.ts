import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  ConflictError,
  ConveyorError,
  ERROR_CODES,
  NotFoundError,
  TaskOutcomeError,
  ValidationError,
} from "./errors.ts";

/** The rows of docs/errors.md's table: `| \`code\` | status | meaning | when |`. */
function documentedCodes(): Map<string, number> {
  const text = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const rows = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (match === null) continue;
    assert.ok(!rows.has(match[1]!), `docs/errors.md lists ${match[1]} twice`);
    rows.set(match[1]!, Number(match[2]));
  }
  return rows;
}

test("every code in ERROR_CODES is documented in docs/errors.md with the same status", () => {
  const documented = documentedCodes();
  for (const [code, status] of Object.entries(ERROR_CODES)) {
    assert.ok(documented.has(code), `docs/errors.md does not document ${code}`);
    assert.equal(documented.get(code), status, `docs/errors.md gives ${code} another status`);
  }
});

test("docs/errors.md documents no code that ERROR_CODES lacks", () => {
  for (const code of documentedCodes().keys()) {
    assert.ok(Object.hasOwn(ERROR_CODES, code), `docs/errors.md documents ${code}, which ERROR_CODES does not have`);
  }
});

test("error classes carry their code's status", () => {
  const errors: ConveyorError[] = [
    new ValidationError("bad"),
    new ValidationError("bad json", undefined, "invalid_json"),
    new NotFoundError("task_not_found", "missing"),
    new ConflictError("duplicate_key", "taken"),
    new TaskOutcomeError("wait_timeout", 1, "later"),
  ];
  for (const error of errors) {
    assert.ok(error instanceof ConveyorError);
    assert.equal(error.status, ERROR_CODES[error.code]);
  }
});
