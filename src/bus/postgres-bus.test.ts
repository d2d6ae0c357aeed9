import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { postgresAvailable, postgresUrl, requireService } from "../../test/support/services.ts";
import { PostgresBus } from "./postgres-bus.ts";
import {
  Inbox,
  isWake,
  nextReconnect,
  record,
  remoteBusCases,
  settle,
  started,
  uniqueName,
} from "./remote-bus-cases.ts";

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  client.on("error", () => {});
  await client.connect();
  return client;
}

remoteBusCases({
  name: "PostgresBus",
  available: async (t) => requireService(t, "PostgreSQL", await postgresAvailable()),
  create: (channel) => new PostgresBus({ connectionString: postgresUrl(), channel }),
  standalone: (channel) => ({
    module: new URL("./postgres-bus.ts", import.meta.url).href,
    exportName: "PostgresBus",
    options: { connectionString: postgresUrl(), channel },
  }),
  maxPayloadBytes: 7999,
  async raw(channel) {
    const client = await admin();
    const payloads = new Inbox<string>();
    client.on("notification", (n) => {
      if (n.channel === channel) payloads.push(n.payload ?? "");
    });
    await client.query(`LISTEN "${channel}"`);
    return { payloads, close: () => client.end() };
  },
});

test("PostgresBus: rejects a channel that is not a plain lower-case identifier", () => {
  for (const channel of ["", "Conveyor", "1abc", "a-b", "a;b", "x".repeat(64)]) {
    assert.throws(() => new PostgresBus({ connectionString: postgresUrl(), channel }), TypeError, channel);
  }
  assert.equal(new PostgresBus({ connectionString: postgresUrl() }).channel, "conveyor");
});

test("PostgresBus: start() rejects when the server cannot be reached, and leaves nothing open", async () => {
  const bus = new PostgresBus({ connectionString: "postgres://postgres@127.0.0.1:1/test" });
  await assert.rejects(bus.start(), /ECONNREFUSED/);
  assert.equal(bus.connected, false);
  await bus.close();
});

test("PostgresBus: recovers after its LISTEN backends are terminated, and messages flow again", {
  timeout: 30_000,
}, async (t) => {
  if (!requireService(t, "PostgreSQL", await postgresAvailable())) return;
  const channel = uniqueName("conveyor_t");
  const a = await started(t, new PostgresBus({ connectionString: postgresUrl(), channel }));
  const b = await started(t, new PostgresBus({ connectionString: postgresUrl(), channel }));
  const [aIn, bIn] = [record(a), record(b)];
  const sql = await admin();
  t.after(() => sql.end());

  const listenPids = async (bus: PostgresBus) =>
    (
      await sql.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
        [bus.applicationName],
      )
    ).rows.map((r) => r.pid);
  const [aPids, bPids] = [await listenPids(a), await listenPids(b)];
  assert.equal(aPids.length, 1, "A's LISTEN connection in pg_stat_activity");
  assert.equal(bPids.length, 1, "B's LISTEN connection in pg_stat_activity");

  const reconnected = Promise.all([nextReconnect(a, "A's reconnect"), nextReconnect(b, "B's reconnect")]);
  const killedAt = Date.now();
  await sql.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", [
    `conveyor-bus-%${a.origin}`,
  ]);
  await sql.query("SELECT pg_terminate_backend($1)", [bPids[0]]);
  a.publish("wake", { queue: "while-down" }); // must not throw; local subscribers still hear it
  const [ra, rb] = await reconnected;
  t.diagnostic(
    `reconnected after ${Date.now() - killedAt} ms (A: ${ra.downMs} ms, ${ra.attempts} attempt(s); B: ${rb.downMs} ms, ${rb.attempts} attempt(s))`,
  );
  await aIn.waitFor("local delivery of the message published while down", isWake("while-down"));
  await aIn.waitFor("the synthetic events {} after A reconnected", ([c]) => c === "events");
  await bIn.waitFor("the synthetic events {} after B reconnected", ([c]) => c === "events");
  assert.notDeepEqual(await listenPids(a), aPids, "A listens on a new backend");

  a.publish("wake", { queue: "after-recovery" });
  await bIn.waitFor("A's message on B after recovery", isWake("after-recovery"));
  b.publish("cancel", { id: 7 });
  await aIn.waitFor("B's message on A after recovery", ([c, m]) => c === "cancel" && (m as { id: number }).id === 7);
  await settle(a, aIn, b, bIn);
  assert.equal(aIn.count(isWake("after-recovery")), 1, "no echo on A");
  assert.equal(bIn.count(isWake("while-down")), 0, "a signal published while down is dropped, not replayed");
});
