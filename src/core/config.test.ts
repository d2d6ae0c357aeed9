import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "./errors.ts";
import { parseEnvConfig } from "./config.ts";

test("reads every known variable into its setting and ignores the rest", () => {
  const config = parseEnvConfig({
    PORT: "4100",
    HOST: "127.0.0.1",
    CONVEYOR_DATABASE: "postgres://x/y",
    CONVEYOR_SCHEMA: "blue",
    CONVEYOR_AMQP_URL: "amqp://h",
    CONVEYOR_TOKEN: "t",
    CONVEYOR_NODE_NAME: "n1",
    CONVEYOR_CONCURRENCY: "0",
    CONVEYOR_POLL_INTERVAL_MS: "250",
    CONVEYOR_HEARTBEAT_INTERVAL_MS: "200",
    CONVEYOR_DEAD_AFTER_BEATS: "3",
    CONVEYOR_MAX_STALLS: "5",
    CONVEYOR_SHUTDOWN_GRACE_MS: "0",
    CONVEYOR_LOG_LEVEL: "debug",
    UNRELATED: "x",
  });
  assert.deepEqual(config, {
    port: 4100,
    host: "127.0.0.1",
    database: "postgres://x/y",
    schema: "blue",
    amqp: "amqp://h",
    token: "t",
    nodeName: "n1",
    concurrency: 0,
    pollIntervalMs: 250,
    heartbeatIntervalMs: 200,
    deadAfterBeats: 3,
    maxStalls: 5,
    shutdownGraceMs: 0,
    logLevel: "debug",
  });
});

test("empty and absent variables leave the default", () => {
  assert.deepEqual(parseEnvConfig({ PORT: "", CONVEYOR_CONCURRENCY: undefined }), {});
});

test("a bad value is a ConfigError naming the variable", () => {
  const bad: Record<string, string> = {
    PORT: "70000",
    CONVEYOR_CONCURRENCY: "-1",
    CONVEYOR_HEARTBEAT_INTERVAL_MS: "1.5",
    CONVEYOR_DEAD_AFTER_BEATS: "1",
    CONVEYOR_POLL_INTERVAL_MS: "fast",
    CONVEYOR_LOG_LEVEL: "loud",
    CONVEYOR_SHUTDOWN_GRACE_MS: "1e3",
  };
  for (const [variable, value] of Object.entries(bad)) {
    assert.throws(
      () => parseEnvConfig({ [variable]: value }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.code, "config_invalid");
        assert.match(error.message, new RegExp(variable));
        return true;
      },
      `${variable}=${value}`,
    );
  }
});
