import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TASK_STATES } from "../core/states.ts";
import { startFixture, type Fixture } from "./server-fixture.ts";

describe("the home page", () => {
  let f: Fixture;
  before(async () => (f = await startFixture()));
  after(async () => f.close());

  it("GET / is a small HTML page with the node, its queues and links to the API", async () => {
    const reply = await fetch(`${f.base}/`);
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get("content-type") ?? "", /^text\/html/);
    const html = await reply.text();
    assert.ok(html.includes(f.conveyor.nodeId));
    for (const link of ["/api/tasks", "/api/nodes", "/api/health", "/api/openapi.json"])
      assert.ok(html.includes(`href="${link}"`), link);
    for (const state of TASK_STATES) assert.ok(html.includes(`<th>${state}</th>`), `a column for ${state}`);
  });
});
