/**
 * The engine's surface, over a real WebSocket and real HTTP (contract A.4, A.5), on SQLite with a RabbitMQ vhost of
 * its own: Phoenix V2 and V1 frames, joins and refusals, heartbeats, the exact event payloads, replies to every
 * push (the seed sent none), bad pushes and bad frames (the channel stays joined), the page, and the resume of a
 * page's channel from a log position.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import type { RunningTodo } from "./app.ts";
import { acceptsHtml } from "./app.ts";
import { configFromEnv, modeFromEnv, UnknownModeError } from "./config.ts";
import { serializerFor } from "./phoenix.ts";
import { parseAction } from "./todo.ts";
import {
  instance,
  type Logged,
  fileVhost,
  removeFileVhost,
  PhoenixClient,
  removeDir,
  requireBroker,
  tempDir,
  type Vhost,
  vhostsAvailable,
} from "./todo-fixture.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

after(() => removeFileVhost());

describe("configuration", () => {
  it("reads APP_MODE as the seed: engine by default, any case, anything else refused", () => {
    assert.equal(modeFromEnv(undefined), "engine");
    assert.equal(modeFromEnv(""), "engine");
    assert.equal(modeFromEnv("Engine"), "engine");
    assert.equal(modeFromEnv(" WORKER "), "worker");
    assert.throws(() => modeFromEnv("master"), UnknownModeError);
    assert.throws(() => modeFromEnv("master"), /Unknown Application Mode/);
  });

  it("has the seed's defaults and names a bad variable", () => {
    const config = configFromEnv({});
    assert.equal(config.port, 4000);
    assert.equal(config.amqpUrl, "amqp://guest:guest@localhost:5672");
    assert.equal(config.database, "tmp/ztd.db");
    assert.equal(configFromEnv({ DATA_DIR: "/var/ztd" }).database, "/var/ztd/ztd.db");
    assert.throws(() => configFromEnv({ PORT: "99999" }), /PORT/);
    assert.throws(() => configFromEnv({ AMQP_URL: "http://x" }), /AMQP_URL/);
    assert.throws(() => configFromEnv({ CONVEYOR_DATABASE: "mysql://x" }), /CONVEYOR_DATABASE/);
  });

  it("server.ts exits non-zero with Unknown Application Mode before listening", async () => {
    const child = spawn(process.execPath, ["examples/todo/server.ts"], {
      env: { ...process.env, APP_MODE: "Master", PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.notEqual(code, 0);
    assert.match(output, /Unknown Application Mode/);
    assert.doesNotMatch(output, /running at/);
  });

  it("negotiates the serializer as Phoenix 1.3 (no vsn is V1) and accepts HTML as its browser pipeline", () => {
    assert.notEqual(serializerFor(null), null);
    assert.notEqual(serializerFor("2.0.0"), null);
    assert.notEqual(serializerFor("1.0.0"), null);
    assert.equal(serializerFor("3.0.0"), null);
    assert.equal(acceptsHtml(undefined), true);
    assert.equal(acceptsHtml("text/html,application/xhtml+xml,*/*;q=0.8"), true);
    assert.equal(acceptsHtml("application/json"), false);
  });

  it("checks actions as the seed's changeset, refusing with a reason where the seed crashed", () => {
    const reason = (type: unknown, data: unknown) => (parseAction(type, data) as { reason?: string }).reason;
    assert.deepEqual(parseAction("insert", { title: "a", id: "ignored", extra: 1 }), {
      type: "insert",
      data: { title: "a" },
    });
    assert.equal(reason("insert", { title: "   " }), "blank_title");
    assert.equal(reason("insert", { title: null }), "blank_title");
    assert.equal(reason("insert", {}), "blank_title");
    assert.equal(reason("insert", { title: 5 }), "invalid_title");
    assert.equal(reason("insert", { title: "x".repeat(256) }), "title_too_long");
    assert.equal(reason("insert", { title: "x", done: "yes" }), "invalid_done");
    assert.equal(reason("insert", undefined), "missing_data");
    assert.equal(reason("insert", [1]), "invalid_data");
    assert.equal(reason("update", { title: "x" }), "missing_id");
    assert.equal(reason("update", { id: "123" }), "invalid_id");
    assert.equal(reason("delete", { id: 7 }), "invalid_id");
    assert.equal(reason("upsert", {}), "unknown_event");
  });
});

describe("the engine's Phoenix channel and page", () => {
  let vhost: Vhost | null = null;
  let engine: RunningTodo & { logs: Logged };
  let dir: string;
  const clients: PhoenixClient[] = [];
  const open = async (version: 1 | 2 = 2) => {
    const client = await PhoenixClient.open(engine.url, version);
    clients.push(client);
    return client;
  };

  before(async () => {
    if (!(await vhostsAvailable())) return;
    vhost = await fileVhost();
    dir = tempDir();
    engine = await instance({ mode: "engine", amqpUrl: vhost.url, database: `${dir}/ztd.db` });
  });
  after(async () => {
    for (const client of clients) client.close();
    await engine?.stop();
    if (dir) removeDir(dir);
  });

  it("V2: joins todo_events, refuses other topics, answers heartbeats without a join", async (t) => {
    if (!(await requireBroker(t))) return;
    const client = await open();
    const heartbeat = await client.push("heartbeat", {}, "phoenix");
    assert.deepEqual(heartbeat, {
      joinRef: "1",
      ref: heartbeat.ref,
      topic: "phoenix",
      event: "phx_reply",
      payload: { status: "ok", response: {} },
    });
    const refused = await client.join("rooms:lobby");
    assert.deepEqual(refused.payload, { status: "error", response: { reason: "unmatched topic" } });
    const joined = await client.join("todo_events", { anything: true });
    assert.deepEqual(joined.payload, { status: "ok", response: {} });
    assert.equal(
      client.raw.at(-1),
      `["${joined.joinRef}","${joined.ref}","todo_events","phx_reply",{"status":"ok","response":{}}]`,
    );
    // A push on a topic not joined is an unmatched topic too.
    const stray = await client.push("insert", { data: { title: "x" } }, "rooms:lobby");
    assert.deepEqual(stray.payload, { status: "error", response: { reason: "unmatched topic" } });
  });

  it("insert, update, delete: exact payloads to every client, in order, each push answered", async (t) => {
    if (!(await requireBroker(t))) return;
    const [a, b] = [await open(), await open(1)];
    await a.join();
    await b.join();
    const inserted = await a.push("insert", { data: { title: "Pending 1" } });
    assert.equal(inserted.payload.status, "ok");
    const item = inserted.payload.response.data;
    assert.match(item.id, UUID);
    assert.deepEqual(inserted.payload.response, {
      type: "insert",
      data: { id: item.id, title: "Pending 1", done: false },
    });
    const done = await b.push("insert", { data: { title: "Done 1", done: true } });
    const updated = await a.push("update", { data: { id: item.id, title: "Renamed", done: true } });
    assert.equal(updated.payload.status, "ok");
    const deleted = await b.push("delete", { data: { id: done.payload.response.data.id } });
    assert.equal(deleted.payload.status, "ok");
    const expected = [
      { type: "insert", data: { id: item.id, title: "Pending 1", done: false } },
      { type: "insert", data: { id: done.payload.response.data.id, title: "Done 1", done: true } },
      { type: "update", data: { id: item.id, title: "Renamed", done: true } },
      { type: "delete", data: { id: done.payload.response.data.id } },
    ];
    for (const client of [a, b]) await client.until(() => client.events().length >= 4, "four events");
    assert.deepEqual(a.events(), expected);
    assert.deepEqual(b.events(), expected);
    // The seed's broadcast frames: V2 [null, null, topic, "event", payload]; V1 {topic, event, payload, ref: null}.
    assert.ok(a.raw.some((raw) => raw.startsWith('[null,null,"todo_events","event",{"type":"insert"')));
    assert.ok(b.raw.some((raw) => raw.startsWith('{"topic":"todo_events","event":"event","payload":{"type":"insert"')));
    assert.ok(b.raw.every((raw) => !raw.includes("join_ref")));
    // A partial update keeps the other field.
    const partial = await a.push("update", { data: { id: item.id, done: false } });
    assert.deepEqual(partial.payload.response.data, { id: item.id, title: "Renamed", done: false });
  });

  it("bad pushes get an error reply, broadcast nothing, and the channel stays joined", async (t) => {
    if (!(await requireBroker(t))) return;
    const client = await open();
    await client.join();
    const unknownId = "0b6e4a5e-8a2b-4c56-9d1c-4a3b2c1d0e9f";
    const cases: [string, unknown, string][] = [
      ["insert", { data: { title: "" } }, "blank_title"],
      ["insert", { data: { title: "   " } }, "blank_title"],
      ["insert", { data: {} }, "blank_title"],
      ["insert", {}, "missing_data"],
      ["insert", "text", "missing_data"],
      ["insert", { data: { title: "x".repeat(300) } }, "title_too_long"],
      ["update", { data: { title: "x" } }, "missing_id"],
      ["update", { data: { id: unknownId, title: "x" } }, "not_found"],
      ["update", { data: { id: "not-a-uuid", title: "x" } }, "invalid_id"],
      ["delete", { data: { id: "' OR 1=1 --" } }, "invalid_id"],
      ["rename", { data: {} }, "unknown_event"],
    ];
    for (const [event, payload, reason] of cases) {
      const reply = await client.push(event, payload);
      assert.equal(reply.payload.status, "error", `${event} ${JSON.stringify(payload)}`);
      assert.equal(reply.payload.response.reason, reason, `${event} ${JSON.stringify(payload)}`);
    }
    // Still joined: a good push works, and its event is the first one this client sees.
    const ok = await client.push("insert", { data: { title: "after the bad ones" } });
    assert.equal(ok.payload.status, "ok");
    await client.until(() => client.events().length === 1, "one event");
    assert.deepEqual(client.events()[0].data.title, "after the bad ones");
    // As the seed: a delete of an unknown (well-formed) id succeeds and is broadcast; an upper-case id is one id.
    const gone = await client.push("delete", { data: { id: unknownId.toUpperCase() } });
    assert.equal(gone.payload.status, "ok");
    await client.until(() => client.events().length === 2, "the delete");
    assert.deepEqual(client.events()[1], { type: "delete", data: { id: unknownId } });
  });

  it("bad frames are dropped, the connection and its channel stay", async (t) => {
    if (!(await requireBroker(t))) return;
    const client = await open();
    await client.join();
    client.ws.send("not json");
    client.ws.send("[1,2,3]");
    client.ws.send('{"topic":5}');
    client.ws.send(Buffer.from([0, 1, 2]), { binary: true });
    client.ws.send("null");
    const ok = await client.push("insert", { data: { title: "still here" } });
    assert.equal(ok.payload.status, "ok");
    assert.equal(engine.phoenix.connections >= 1, true);
  });

  it("a second join closes the first (phx_close); phx_leave answers ok, then phx_close", async (t) => {
    if (!(await requireBroker(t))) return;
    const client = await open();
    const first = await client.join();
    const second = await client.join();
    await client.next((f) => f.event === "phx_close" && f.joinRef === first.joinRef, "phx_close of the first join");
    const ref = client.send("todo_events", "phx_leave", {}, second.joinRef);
    const left = await client.reply(ref);
    assert.deepEqual(left.payload, { status: "ok", response: {} });
    await client.next((f) => f.event === "phx_close" && f.joinRef === second.joinRef, "phx_close of the leave");
    const after = await client.push("insert", { data: { title: "x" } });
    assert.deepEqual(after.payload.response, { reason: "unmatched topic" });
  });

  it("GET /: the seed's React mount point with items and mode; 404, 406, HEAD; the script", async (t) => {
    if (!(await requireBroker(t))) return;
    const client = await open();
    await client.join();
    await client.push("insert", { data: { title: `Tom & "Jerry" <b>` } });
    const response = await fetch(`${engine.url}/`, { headers: { accept: "text/html" } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/html/);
    const html = await response.text();
    assert.match(html, /data-react-class="Components\.Todo"/);
    const props = JSON.parse(
      html
        .match(/data-react-props="([^"]*)"/)![1]!
        .replaceAll("&quot;", '"')
        .replaceAll("&#39;", "'")
        .replaceAll("&lt;", "<")
        .replaceAll("&gt;", ">")
        .replaceAll("&amp;", "&"),
    );
    assert.equal(props.mode, "engine");
    assert.ok(props.items.some((item: { title: string }) => item.title === `Tom & "Jerry" <b>`));
    assert.deepEqual(Object.keys(props.items[0]), ["id", "title", "done"]);
    assert.equal(typeof props.position.offset, "number");
    assert.equal((await fetch(`${engine.url}/nope`)).status, 404);
    assert.equal((await fetch(`${engine.url}/`, { headers: { accept: "application/json" } })).status, 406);
    const head = await fetch(`${engine.url}/`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    // A serializer version Phoenix 1.3 does not speak: the upgrade is refused with 403.
    const refusal = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${engine.url.replace("http", "ws")}/socket/websocket?vsn=9.0.0`);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => reject(new Error("vsn 9.0.0 was accepted")));
      ws.on("error", () => {});
    });
    assert.equal(refusal, 403);
  });

  it("a page's channel (join with since) gets exactly the changes after its position, with offsets", async (t) => {
    if (!(await requireBroker(t))) return;
    const { position } = await engine.engine!.snapshot();
    const writer = await open();
    await writer.join();
    const titles = ["r1", "r2", "r3"];
    for (const title of titles) await writer.push("insert", { data: { title } });
    const reader = await open();
    const joined = await reader.join("todo_events", { since: position });
    assert.deepEqual(joined.payload, { status: "ok", response: { resumed: true } });
    await reader.until(() => reader.frames.filter((f) => f.event === "change").length === 3, "three changes");
    const changes = reader.frames.filter((f) => f.event === "change").map((f) => f.payload);
    assert.deepEqual(
      changes.map((c) => c.data.title),
      titles,
    );
    assert.ok(changes.every((c, i) => c.offset > (i === 0 ? position.offset : changes[i - 1].offset)));
    assert.deepEqual(Object.keys(changes[0]), ["offset", "type", "data"]);
    // A position from another log (or none): the list and its position instead.
    const stranger = await open();
    const fresh = await stranger.join("todo_events", { since: { epoch: "another", offset: 3 } });
    assert.equal(fresh.payload.response.resumed, false);
    assert.deepEqual(fresh.payload.response.items, (await engine.engine!.snapshot()).items);
  });
});
