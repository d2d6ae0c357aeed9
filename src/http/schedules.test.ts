import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startFixture, type Fixture } from "./server-fixture.ts";

describe("HTTP API: schedules", () => {
  let f: Fixture;
  before(async () => (f = await startFixture()));
  after(async () => f.close());

  it("creates with PUT, lists, gets, replaces, deletes", async () => {
    const created = await f.call("PUT", "/api/schedules/nightly", {
      body: { cron: "0 3 * * *", type: "echo", data: { n: 1 }, timezone: "Europe/Paris" },
    });
    assert.equal(created.status, 200);
    assert.equal(created.body.schedule.name, "nightly");
    assert.equal(created.body.schedule.timezone, "Europe/Paris");
    assert.equal(created.body.schedule.lastTick, null);
    assert.ok(Date.parse(created.body.schedule.nextRun) > Date.now(), "the next run is in the future");
    const listed = await f.call("GET", "/api/schedules");
    assert.deepEqual(
      listed.body.schedules.map((s: { name: string }) => s.name),
      ["nightly"],
    );
    const replaced = await f.call("PUT", "/api/schedules/nightly", {
      body: { cron: "*/10 * * * * *", type: "echo", enabled: false },
    });
    assert.equal(replaced.body.schedule.cron, "*/10 * * * * *");
    assert.equal(replaced.body.schedule.nextRun, null, "a disabled schedule has no next run");
    assert.equal((await f.call("GET", "/api/schedules/nightly")).body.schedule.enabled, false);
    assert.equal((await f.call("DELETE", "/api/schedules/nightly")).status, 204);
    assert.equal((await f.call("GET", "/api/schedules/nightly")).status, 404);
    assert.equal((await f.call("DELETE", "/api/schedules/nightly")).status, 404);
  });

  it("rejects bad schedules with 400 and stores nothing", async () => {
    const bad: [string, unknown][] = [
      ["ok", { cron: "not a cron", type: "echo" }],
      ["ok", { cron: "* * * * *", type: "bad type" }],
      ["ok", { cron: "* * * * *", type: "echo", timezone: "Mars/Olympus" }],
      ["ok", { cron: "* * * * *", type: "echo", priority: "5" }],
      ["ok", { cron: "* * * * *", type: "echo", unknown: 1 }],
      ["ok", { cron: "* * * * * * * *", type: "echo" }],
      ["ok", { type: "echo" }],
      ["bad name", { cron: "* * * * *", type: "echo" }],
    ];
    for (const [name, body] of bad) {
      const reply = await f.call("PUT", `/api/schedules/${encodeURIComponent(name)}`, { body });
      assert.equal(reply.status, 400, `${name} ${JSON.stringify(body)} → ${reply.status}`);
      assert.equal(reply.body.error.code, "validation_failed");
    }
    assert.deepEqual((await f.call("GET", "/api/schedules")).body.schedules, []);
  });
});
