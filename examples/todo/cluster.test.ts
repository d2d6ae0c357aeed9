/**
 * An engine and two workers, each with Phoenix clients, end to end over real RabbitMQ: how fast a push reaches every
 * client, a random mix of actions converging everywhere, the engine stopped and started again while a worker takes
 * a change, the broker "restarted" (its vhost deleted and made again: every connection dropped, every non-durable
 * queue gone) in the middle of a run; and, on PostgreSQL, two engines on one database.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { postgresAvailable, postgresUrl, requirePostgres } from "../../test/support/postgres.ts";
import type { RunningTodo } from "./app.ts";
import type { Item } from "./todo.ts";
import {
  instance,
  type Logged,
  listFrom,
  fileVhost,
  removeFileVhost,
  PhoenixClient,
  removeDir,
  requireBroker,
  tempDir,
  type Vhost,
  vhostsAvailable,
} from "./todo-fixture.ts";

type Node = RunningTodo & { logs: Logged };

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The list every instance has: the engine's table, each worker's copy, and each client's list from its events. */
async function lists(engine: Node, workers: Node[]): Promise<Item[][]> {
  return [(await engine.engine!.snapshot()).items, ...workers.map((w) => w.worker!.items)];
}

after(() => removeFileVhost());

describe("an engine and two workers", () => {
  let vhost: Vhost | null = null;
  let dir: string;
  let engine: Node;
  let workers: Node[] = [];
  const clients: PhoenixClient[] = [];

  const connect = async (node: Node) => {
    const client = await PhoenixClient.open(node.url);
    await client.join();
    clients.push(client);
    return client;
  };
  const startEngine = () => instance({ mode: "engine", amqpUrl: vhost!.url, database: `${dir}/ztd.db` });

  before(async () => {
    if (!(await vhostsAvailable())) return;
    vhost = await fileVhost();
    dir = tempDir();
    engine = await startEngine();
    workers = [
      await instance({ mode: "worker", amqpUrl: vhost.url, name: "w1" }),
      await instance({ mode: "worker", amqpUrl: vhost.url, name: "w2" }),
    ];
  });
  after(async () => {
    for (const client of clients) client.close();
    for (const node of [...workers, engine]) await node?.stop();
    if (dir) removeDir(dir);
  });

  it("a push on a worker reaches the clients of every instance within a second", async (t) => {
    if (!(await requireBroker(t))) return;
    const [onEngine, onW1, onW2] = [await connect(engine), await connect(workers[0]!), await connect(workers[1]!)];
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const title = `latency ${i}`;
      const started = performance.now();
      const reply = onW1.push("insert", { data: { title } });
      const seen = [onEngine, onW1, onW2].map((client) =>
        client.next((f) => f.event === "event" && f.payload.data.title === title, `${title} everywhere`, 0, 1000),
      );
      await Promise.all(seen);
      latencies.push(performance.now() - started);
      assert.equal((await reply).payload.status, "ok");
    }
    console.log(
      `push on a worker -> every client (engine + 2 workers), 20 pushes: p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
        `p95 ${percentile(latencies, 95).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
    );
    assert.ok(Math.max(...latencies) < 1000);
  });

  it("a random mix of 50 actions over the three instances converges to one list everywhere", async (t) => {
    if (!(await requireBroker(t))) return;
    const nodes = [engine, ...workers];
    const pushers = await Promise.all(nodes.map((node) => connect(node)));
    const start = (await engine.engine!.snapshot()).items;
    const known = start.map((item) => item.id);
    let seed = 17;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    await Promise.all(
      pushers.map(async (client, k) => {
        for (let i = k; i < 50; i += 3) {
          const kind = known.length === 0 ? 0 : random(4);
          const id = known[random(Math.max(known.length, 1))];
          const reply =
            kind === 0
              ? await client.push("insert", { data: { title: `mix ${i}`, done: random(2) === 0 } })
              : kind === 1
                ? await client.push("update", { data: { id, done: random(2) === 0 } })
                : kind === 2
                  ? await client.push("update", { data: { id, title: `renamed ${i}` } })
                  : await client.push("delete", { data: { id } });
          // An update of an item another instance deleted meanwhile is refused (not_found): as the seed's engine.
          if (reply.payload.status === "ok" && kind === 0) known.push(reply.payload.response.data.id);
          else if (reply.payload.status !== "ok") assert.equal(reply.payload.response.reason, "not_found");
        }
      }),
    );
    const expected = (await engine.engine!.snapshot()).items;
    for (const client of pushers) {
      await client.until(
        () => JSON.stringify(listFrom(start, client.events())) === JSON.stringify(expected),
        "the client's list equals the engine's",
      );
    }
    for (const list of await lists(engine, workers)) assert.deepEqual(list, expected);
  });

  it("the engine stopped and started again: a change taken by a worker meanwhile is applied after", async (t) => {
    if (!(await requireBroker(t))) return;
    const onW2 = await connect(workers[1]!);
    await engine.stop();
    const reply = onW2.push("insert", { data: { title: "while the engine was down" } });
    const update = onW2.push("insert", { data: { title: "and another" } });
    // Nothing answers yet: the change waits in the requests queue (and in the worker, which will send it again).
    const early = await Promise.race([reply.then(() => "answered"), new Promise((r) => setTimeout(r, 700, "waiting"))]);
    assert.equal(early, "waiting");
    engine = await startEngine();
    assert.equal((await reply).payload.status, "ok");
    assert.equal((await update).payload.status, "ok");
    const expected = (await engine.engine!.snapshot()).items;
    assert.equal(expected.filter((i) => i.title === "while the engine was down").length, 1);
    const titles = expected.map((i) => i.title);
    assert.ok(titles.indexOf("while the engine was down") < titles.indexOf("and another"), "in the order taken");
    await onW2.until(() => onW2.events().some((e) => e.data.title === "and another"), "the broadcast after restart");
    for (const list of await lists(engine, workers)) assert.deepEqual(list, expected);
  });

  it("the broker restarted mid-run: nothing lost, everyone converges", async (t) => {
    if (!(await requireBroker(t))) return;
    const pushers = [await connect(engine), await connect(workers[0]!), await connect(workers[1]!)];
    const start = (await engine.engine!.snapshot()).items;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 6; i++) pending.push(pushers[i % 3]!.push("insert", { data: { title: `before ${i}` } }));
    await Promise.all(pending);
    const restarting = vhost!.restart();
    // Changes made while the broker is away: the engine's own at once, the workers' once it is back.
    const during = pushers.map((client, k) => client.push("insert", { data: { title: `during ${k}` } }));
    await restarting;
    const replies = await Promise.all(during);
    for (const reply of replies) assert.equal(reply.payload.status, "ok", JSON.stringify(reply.payload));
    for (let i = 0; i < 6; i++) await pushers[i % 3]!.push("insert", { data: { title: `after ${i}` } });
    const expected = (await engine.engine!.snapshot()).items;
    const titles = expected.map((i) => i.title);
    for (const title of ["before 0", "during 0", "during 1", "during 2", "after 5"]) {
      assert.equal(titles.filter((x) => x === title).length, 1, title);
    }
    // Every worker caught up on what it missed while its connection was down (the `since` RPC), and told its
    // clients, so every client's list is the engine's.
    for (const client of pushers) {
      await client.until(
        () => JSON.stringify(listFrom(start, client.events())) === JSON.stringify(expected),
        "the client's list equals the engine's after the restart",
      );
    }
    for (const list of await lists(engine, workers)) assert.deepEqual(list, expected);
  });
});

describe("two engines on one PostgreSQL database", () => {
  let vhost: Vhost | null = null;
  let schema: string;
  const nodes: Node[] = [];
  const clients: PhoenixClient[] = [];

  before(async () => {
    if (!(await vhostsAvailable()) || !(await postgresAvailable())) return;
    vhost = await fileVhost();
    schema = `ztd_test_${randomBytes(4).toString("hex")}`;
    const options = { mode: "engine" as const, amqpUrl: vhost.url, database: postgresUrl(), schema };
    nodes.push(await instance(options), await instance(options));
    nodes.push(await instance({ mode: "worker", amqpUrl: vhost.url }));
  });
  after(async () => {
    for (const client of clients) client.close();
    for (const node of nodes) await node.stop();
    if (schema !== undefined && (await postgresAvailable())) {
      const client = new pg.Client({ connectionString: postgresUrl() });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });

  it("concurrent changes through both engines and a worker: one order, the same list everywhere", async (t) => {
    if (!(await requireBroker(t)) || !(await requirePostgres(t))) return;
    for (const node of nodes) {
      const client = await PhoenixClient.open(node.url);
      await client.join();
      clients.push(client);
    }
    const ids: string[] = [];
    await Promise.all(
      clients.map(async (client, k) => {
        for (let i = 0; i < 8; i++) {
          const reply = await client.push("insert", { data: { title: `pg ${k}.${i}` } });
          assert.equal(reply.payload.status, "ok");
          ids.push(reply.payload.response.data.id);
        }
      }),
    );
    // Both engines toggle the same items at once: every toggle is checked against the other engine's last one.
    await Promise.all(
      ids
        .slice(0, 6)
        .flatMap((id, i) => [
          clients[0]!.push("update", { data: { id, done: true, title: `a${i}` } }),
          clients[1]!.push("update", { data: { id, done: false, title: `b${i}` } }),
        ]),
    );
    const [first, second] = [await nodes[0]!.engine!.snapshot(), await nodes[1]!.engine!.snapshot()];
    assert.deepEqual(first.items, second.items);
    assert.equal(first.items.length, 24);
    // Every client, whichever engine or worker it is on, saw the same events in the same order.
    for (const client of clients) {
      await client.until(
        () => JSON.stringify(listFrom([], client.events())) === JSON.stringify(first.items),
        "the client's list equals the engines'",
      );
    }
    const orders = clients.map((client) => JSON.stringify(client.events()));
    assert.equal(new Set(orders).size, 1);
    assert.deepEqual(nodes[2]!.worker!.items, first.items);
  });
});

describe("a change the engine does not take in time", () => {
  let vhost: Vhost | null = null;
  let dir: string;
  const nodes: Node[] = [];

  before(async () => {
    if (!(await vhostsAvailable())) return;
    vhost = await fileVhost();
    dir = tempDir();
  });
  after(async () => {
    for (const node of nodes) await node.stop();
    if (dir) removeDir(dir);
  });

  it("is refused to its browser at the deadline, and never applied later (its copies expire)", async (t) => {
    if (!(await requireBroker(t))) return;
    const startEngine = () => instance({ mode: "engine", amqpUrl: vhost!.url, database: `${dir}/ztd.db` });
    const engine = await startEngine();
    // The worker's deadline is 60 s; 1.2 s here, so that the test is short.
    const worker = await instance({ mode: "worker", amqpUrl: vhost!.url, changeDeadlineMs: 1200 });
    nodes.push(worker);
    const client = await PhoenixClient.open(worker.url);
    await client.join();
    assert.equal((await client.push("insert", { data: { title: "in time" } })).payload.status, "ok");
    await engine.stop();
    const started = Date.now();
    const late = await client.push("insert", { data: { title: "too late" } });
    assert.deepEqual(late.payload.status, "error");
    assert.equal(late.payload.response.reason, "engine_unavailable");
    assert.ok(Date.now() - started >= 1100);
    const again = await startEngine();
    nodes.push(again);
    assert.equal((await client.push("insert", { data: { title: "after" } })).payload.status, "ok");
    const titles = (await again.engine!.snapshot()).items.map((item) => item.title);
    assert.deepEqual(titles, ["in time", "after"]);
    client.close();
  });
});
