import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../core/errors.ts";
import { startConfig } from "./start.ts";

test("tokens come from files, trimmed, and a missing, empty or doubled one stops the start", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-tokens-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const write = file("write", "  write-from-file\n");
  const admin = file("admin", "admin-from-file\n");
  const read = file("read", "read-from-file");
  const config = startConfig(
    {},
    { CONVEYOR_TOKEN_FILE: write, CONVEYOR_ADMIN_TOKEN_FILE: admin, CONVEYOR_READ_TOKEN_FILE: read },
  );
  assert.deepEqual(
    [config.token, config.adminToken, config.readToken],
    ["write-from-file", "admin-from-file", "read-from-file"],
  );
  // A flag wins over the environment, as every flag does; its own file too.
  assert.equal(startConfig({ token: "from-flag" }, { CONVEYOR_TOKEN_FILE: write }).token, "from-flag");
  assert.equal(
    startConfig({ "admin-token-file": admin }, { CONVEYOR_ADMIN_TOKEN: "env" }).adminToken,
    "admin-from-file",
  );

  const refused = (values: Record<string, unknown>, env: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => startConfig(values, env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
    );
  refused({}, { CONVEYOR_TOKEN_FILE: join(dir, "missing") }, /CONVEYOR_TOKEN_FILE: cannot read .*missing \(ENOENT\)/);
  refused({}, { CONVEYOR_READ_TOKEN_FILE: file("empty", " \n") }, /CONVEYOR_READ_TOKEN_FILE: .* is empty/);
  refused({}, { CONVEYOR_TOKEN: "x", CONVEYOR_TOKEN_FILE: write }, /CONVEYOR_TOKEN and CONVEYOR_TOKEN_FILE/);
  refused({ "read-token": "x", "read-token-file": read }, {}, /--read-token and --read-token-file/);
  refused({}, { CONVEYOR_ADMIN_TOKEN_FILE: dir }, /CONVEYOR_ADMIN_TOKEN_FILE: cannot read/);
});

test("CORS origins and the rate limit come from the environment, checked", () => {
  const config = startConfig(
    {},
    { CONVEYOR_CORS_ORIGINS: "https://a.example, https://b.example", CONVEYOR_RATE_LIMIT: "0" },
  );
  assert.equal(config.corsOrigins, "https://a.example, https://b.example");
  assert.equal(config.rateLimit, 0);
  assert.throws(() => startConfig({}, { CONVEYOR_RATE_LIMIT: "lots" }), ConfigError);
  assert.equal(startConfig({ "rate-limit": "30" }, {}).rateLimit, 30);
});
