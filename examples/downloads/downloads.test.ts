/**
 * The download manager's contract, end to end over HTTP and SSE against real node processes (`server.ts`) on SQLite:
 * the seed's timeline (shortened by env), one download per user (concurrent requests too), users kept apart, expiry,
 * delete (while running too: the job stops), SSE resume with Last-Event-ID, bad cookies, every route and its bad
 * input, the `error` state, the configuration, and a graceful restart that resumes a download from its last step.
 * The cluster (PostgreSQL, kill -9) is cluster.test.ts; the page in Chromium is page.test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WatchedProcess } from "../../test/support/watched-process.ts";
import { configFromEnv, ConfigurationError, majorOf } from "./config.ts";
import { downloadPdf } from "./pdf.ts";
import { COOKIE_NAME, ID_PATTERN, signSession, verifySession } from "./session.ts";
import { type DownloadsNode, Nodes, SECRET, type SseFrame, User } from "./harness-fixture.ts";
import { freePort } from "../../test/support/free-port.ts";

const START = 300;
const PROCESS = 300;
const READY = 1000;
const TTL = 800;
const TIMINGS = {
  DOWNLOAD_START_MS: String(START),
  DOWNLOAD_PROCESS_MS: String(PROCESS),
  DOWNLOAD_READY_MS: String(READY),
  DOWNLOAD_TTL_MS: String(TTL),
  CLEANER_INTERVAL_MS: "500",
};
/** How late a push may come after its due time (a busy 2-core machine runs other tests too). */
const LATE_MS = 600;

const nodes = new Nodes();
after(() => nodes.close());

let node: DownloadsNode;
before(async () => {
  node = await nodes.start("solo", { DATA_DIR: nodes.tempDir(), ...TIMINGS });
});

const DOWNLOAD_KEYS = ["id", "user_id", "state", "file_url", "node"];

function assertDownload(value: any, expected: Partial<Record<string, unknown>>): void {
  assert.deepEqual(Object.keys(value), DOWNLOAD_KEYS, `the download's fields, in order: ${JSON.stringify(value)}`);
  assert.match(value.id, ID_PATTERN);
  for (const [key, want] of Object.entries(expected))
    assert.equal(value[key], want, `${key} of ${JSON.stringify(value)}`);
}

function assertError(reply: { status: number; json: any }, status: number, code: string): void {
  assert.equal(reply.status, status, JSON.stringify(reply.json));
  assert.equal(reply.json?.error?.code, code, JSON.stringify(reply.json));
  assert.equal(typeof reply.json.error.message, "string");
}

function updates(frames: SseFrame[], id: string): string[] {
  return frames.filter((f) => f.event === "update" && f.data.id === id).map((f) => f.data.state);
}

describe("configuration", () => {
  it("has the seed's defaults and names a bad variable", () => {
    const config = configFromEnv({});
    assert.equal(config.port, 4000);
    assert.deepEqual([config.startMs, config.processMs, config.readyMs, config.ttlMs], [1000, 1000, 5000, 5000]);
    assert.equal(config.sessionSecretIsDefault, true);
    assert.equal(config.database, "tmp/downloads.db");
    assert.equal(majorOf(config.appVersion), 0);
    assert.equal(configFromEnv({ CONVEYOR_DATABASE: "postgres://h/db" }).database, "postgres://h/db");
    for (const [name, value] of [
      ["PORT", "abc"],
      ["PORT", "70000"],
      ["DOWNLOAD_START_MS", "-1"],
      ["DOWNLOAD_TTL_MS", "1.5"],
      ["APP_VERSION", "1.2"],
      ["APP_VERSION", "v1.2.3"],
      ["SESSION_SECRET", "short"],
      ["DOWNLOAD_FAIL_RATE", "2"],
      ["CONVEYOR_LOG_LEVEL", "loud"],
    ] as const) {
      assert.throws(
        () => configFromEnv({ [name]: value }),
        (error: unknown) => error instanceof ConfigurationError && error.message.includes(name),
        `${name}=${value}`,
      );
    }
  });

  it("stops the start with exit code 2 and the variable's name", async () => {
    const bad = nodes.spawn("bad", { APP_VERSION: "1.2" });
    const exit = await bad.exited;
    assert.equal(exit.code, 2);
    assert.match(bad.stderr, /APP_VERSION must be x\.y\.z/);
  });

  it("signs sessions it alone can read back", () => {
    const session = { userId: "abcdefghij", expiresAt: Date.now() + 60_000 };
    const value = signSession(SECRET, session);
    assert.deepEqual(verifySession(SECRET, value), session);
    assert.equal(verifySession("another-secret-of-16+", value), null);
    assert.equal(verifySession(SECRET, value, session.expiresAt), null, "expired");
  });

  it("makes a well-formed PDF (its cross-reference table points at its objects)", () => {
    const pdf = downloadPdf({ id: "abcdefghij", userId: "u(s)er\\1234", node: "n1", readyAt: new Date(0) }).toString(
      "latin1",
    );
    assert.ok(pdf.startsWith("%PDF-1.4\n") && pdf.endsWith("%%EOF\n"));
    const xref = Number(/startxref\n(\d+)\n/.exec(pdf)![1]);
    assert.ok(pdf.startsWith("xref\n", xref));
    const offsets = [...pdf.slice(xref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
    assert.equal(offsets.length, 7);
    offsets.forEach((offset, i) => assert.ok(pdf.startsWith(`${i + 1} 0 obj\n`, offset), `object ${i + 1}`));
    assert.ok(pdf.includes("(Requested by user u\\(s\\)er\\\\1234)"), "text escaped");
  });
});

describe("one node", () => {
  it("GET / gives a new user a signed session cookie and the page", async () => {
    const user = new User();
    const page = await user.request(node, "GET", "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(
      page.headers.get("set-cookie")!,
      new RegExp(`^${COOKIE_NAME}=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax$`),
    );
    assert.match(user.userId!, ID_PATTERN);
    assert.match(page.text, /Download PDF/);
    assert.ok(page.text.includes(user.userId!));
    const again = await user.request(node, "GET", "/");
    assert.equal(again.headers.get("set-cookie"), null, "a valid cookie is kept");
    assert.equal(again.status, 200);
  });

  it("pushes the seed's timeline: pending at T+start, processing a step later, ready, then gone after the TTL", async () => {
    const user = await new User().visit(node);
    const events = await user.events(node);
    assert.equal(events.status, 200);
    const t = Date.now();
    const created = await user.request(node, "POST", "/download");
    assert.equal(created.status, 201);
    assertDownload(created.json, { user_id: user.userId, state: "pending", file_url: null, node: "solo" });
    const id = created.json.id;
    assertDownload((await user.request(node, "GET", "/download")).json, { id, state: "pending" });

    const pending = await events.state("pending", id);
    const processing = await events.state("processing", id);
    assertDownload((await user.request(node, "GET", "/download")).json, { id, state: "processing", node: "solo" });
    const ready = await events.state("ready", id);
    assertDownload(ready.data, { id, user_id: user.userId, file_url: `/downloads/${id}.pdf`, node: "solo" });
    assertDownload((await user.request(node, "GET", "/download")).json, { id, state: "ready" });
    const removed = await events.next("the removal", (f) => f.event === "removed");
    assert.deepEqual(removed.data, { id, user_id: user.userId, reason: "expired" });
    assertError(await user.request(node, "GET", "/download"), 404, "download_not_found");

    const due = (frame: SseFrame, ms: number, what: string) => {
      const late = frame.at - (t + ms);
      assert.ok(late >= -50 && late <= LATE_MS, `${what} came ${late} ms after T + ${ms}`);
    };
    due(pending, START, "pending");
    due(processing, START + PROCESS, "processing");
    due(ready, START + PROCESS + READY, "ready");
    due(removed, START + PROCESS + READY + TTL, "the removal");
    assert.deepEqual(updates(events.frames, id), ["pending", "processing", "ready"], "each state once");
    const progress = events.events.filter((f) => f.event === "progress").map((f) => f.data);
    assert.deepEqual(
      progress.map((p) => p.percent),
      [10, 20, 30, 40, 50, 60, 70, 80, 90],
    );
    assert.deepEqual(progress[0], { id, percent: 10, node: "solo" });
    const ids = events.frames.map((f) => Number(f.id!.split(":")[1]));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      "ids in the log's order",
    );

    const next = await user.request(node, "POST", "/download");
    assert.equal(next.status, 201, "a new request once it is gone");
    assert.notEqual(next.json.id, id);
    await events.state("pending", next.json.id);
    assert.equal((await user.request(node, "DELETE", "/download")).status, 204);
    events.close();
  });

  it("refuses a second download while one exists, for concurrent requests too", async () => {
    const user = await new User().visit(node);
    const replies = await Promise.all(Array.from({ length: 8 }, () => user.request(node, "POST", "/download")));
    const created = replies.filter((r) => r.status === 201);
    assert.equal(created.length, 1, JSON.stringify(replies.map((r) => r.status)));
    const id = created[0]!.json.id;
    for (const reply of replies.filter((r) => r.status !== 201)) {
      assertError(reply, 409, "download_exists");
      assertDownload(reply.json.error.download, { id, user_id: user.userId });
    }
    assertError(await user.request(node, "POST", "/download"), 409, "download_exists");
    assert.equal((await user.request(node, "DELETE", "/download")).status, 204);
  });

  it("keeps users apart: their downloads, their pushes, their files", async () => {
    const [a, b] = await Promise.all([new User().visit(node), new User().visit(node)]);
    const [eventsA, eventsB] = await Promise.all([a.events(node), b.events(node)]);
    const idA = (await a.request(node, "POST", "/download")).json.id;
    const idB = (await b.request(node, "POST", "/download")).json.id;
    assert.notEqual(idA, idB);
    assert.equal((await a.request(node, "GET", "/download")).json.id, idA);
    assert.equal((await b.request(node, "GET", "/download")).json.id, idB);
    await Promise.all([eventsA.state("ready", idA), eventsB.state("ready", idB)]);
    assert.ok(
      eventsA.events.every((f) => f.data.id === idA),
      eventsA.describe(),
    );
    assert.ok(
      eventsB.events.every((f) => f.data.id === idB),
      eventsB.describe(),
    );
    const file = await a.request(node, "GET", `/downloads/${idA}.pdf`);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get("content-type"), "application/pdf");
    assert.equal(file.headers.get("content-disposition"), `attachment; filename="${idA}.pdf"`);
    assert.ok(file.text.startsWith("%PDF-1.4") && file.text.includes(`(Download ${idA})`));
    assertError(await b.request(node, "GET", `/downloads/${idA}.pdf`), 404, "download_not_found");
    await Promise.all([a.request(node, "DELETE", "/download"), b.request(node, "DELETE", "/download")]);
    eventsA.close();
    eventsB.close();
  });

  it("DELETE removes the download at once and stops its job", async () => {
    const user = await new User().visit(node);
    assert.equal((await user.request(node, "DELETE", "/download")).status, 204, "nothing to delete is fine");
    const events = await user.events(node);
    const first = (await user.request(node, "POST", "/download")).json.id;
    await events.state("processing", first);
    const deleted = await user.request(node, "DELETE", "/download");
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, "");
    assertError(await user.request(node, "GET", "/download"), 404, "download_not_found");
    const removal = await events.next("the removal", (f) => f.event === "removed" && f.data.id === first);
    assert.equal(removal.data.reason, "deleted");
    // A new download, started after the delete, is ready after the old one would have been: had the old job gone
    // on, its pushes would have come before.
    const second = (await user.request(node, "POST", "/download")).json.id;
    await events.state("ready", second);
    const afterRemoval = events.frames.slice(events.frames.indexOf(removal) + 1);
    assert.deepEqual(
      afterRemoval.filter((f) => f.data.id === first),
      [],
      "nothing of the deleted download after its removal",
    );
    // Deleting a ready one works too.
    assert.equal((await user.request(node, "DELETE", "/download")).status, 204);
    assertError(await user.request(node, "GET", "/download"), 404, "download_not_found");
    await events.next("the second removal", (f) => f.event === "removed" && f.data.id === second);
    events.close();
  });

  it("SSE resumes after Last-Event-ID with exactly what was missed", async () => {
    const user = await new User().visit(node);
    const witness = await user.events(node);
    const first = await user.events(node);
    const id = (await user.request(node, "POST", "/download")).json.id;
    const processing = await first.state("processing", id);
    first.close();
    await witness.state("ready", id);
    const resumed = await user.events(node, processing.id!);
    await resumed.state("ready", id);
    const untilReady = (frames: SseFrame[]) =>
      frames.slice(0, frames.findIndex((f) => f.event === "update" && f.data.state === "ready") + 1);
    const missed = untilReady(witness.events.slice(witness.events.findIndex((f) => f.id === processing.id) + 1));
    assert.deepEqual(
      untilReady(resumed.events).map((f) => [f.id, f.event, f.data]),
      missed.map((f) => [f.id, f.event, f.data]),
      "every frame after the id, in order, once, and no snapshot",
    );
    resumed.close();

    // Another log's position: the stream starts afresh, from the download as it is.
    const stranger = await user.events(node, "0123456789abcdef:5");
    const snapshot = await stranger.next("a snapshot", (f) => f.event === "update");
    assertDownload(snapshot.data, { id, state: "ready" });
    stranger.close();

    const bad = await fetch(`${node.url}/download/events`, {
      headers: { cookie: user.cookie!, "last-event-id": "nope" },
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.code, "invalid_last_event_id");
    assert.equal((await user.request(node, "DELETE", "/download")).status, 204);
    witness.close();
  });

  it("gives a missing, tampered, expired or foreign cookie a new session, and no one else's download", async () => {
    const owner = await new User().visit(node);
    const id = (await owner.request(node, "POST", "/download")).json.id;
    const value = owner.cookie!.split("=")[1]!;
    const [payload, signature] = value.split(".") as [string, string];
    const flipped = signature.slice(0, -2) + (signature.at(-2) === "A" ? "B" : "A") + signature.at(-1);
    const forged = Buffer.from(JSON.stringify({ u: owner.userId, exp: Date.now() + 60_000 })).toString("base64url");
    const cookies = {
      missing: null,
      tampered: `${COOKIE_NAME}=${payload}.${flipped}`,
      "forged payload": `${COOKIE_NAME}=${forged}.${signature}`,
      expired: `${COOKIE_NAME}=${signSession(SECRET, { userId: owner.userId!, expiresAt: Date.now() - 1000 })}`,
      "other secret": `${COOKIE_NAME}=${signSession("some-other-secret-value", { userId: owner.userId!, expiresAt: Date.now() + 60_000 })}`,
      garbage: `${COOKIE_NAME}=%%%`,
    };
    for (const [what, cookie] of Object.entries(cookies)) {
      const stranger = new User(cookie);
      const reply = await stranger.request(node, "GET", "/download");
      assertError(reply, 404, "download_not_found");
      assert.ok(reply.headers.get("set-cookie")?.startsWith(`${COOKIE_NAME}=`), `${what}: a new session`);
      assert.notEqual(stranger.userId, owner.userId, what);
      assert.equal((await stranger.request(node, "GET", `/downloads/${id}.pdf`)).status, 404, what);
    }
    assert.equal((await owner.request(node, "GET", "/download")).json.id, id, "the owner still has it");
    assert.equal((await owner.request(node, "DELETE", "/download")).status, 204);
  });

  it("answers every route, and bad requests with a clear 4xx and an error code", async () => {
    const user = await new User().visit(node);
    assertError(await user.request(node, "GET", "/nope"), 404, "not_found");
    assertError(await user.request(node, "GET", "/download/"), 404, "not_found");
    const put = await user.request(node, "PUT", "/download");
    assertError(put, 405, "method_not_allowed");
    assert.equal(put.headers.get("allow"), "GET, HEAD, POST, DELETE");
    assertError(await user.request(node, "POST", "/"), 405, "method_not_allowed");
    assertError(await user.request(node, "POST", "/download/events"), 405, "method_not_allowed");
    assertError(await user.request(node, "DELETE", "/cluster"), 405, "method_not_allowed");
    assertError(await user.request(node, "GET", "/downloads/short.pdf"), 404, "download_not_found");
    assertError(await user.request(node, "GET", "/downloads/abcdefghij.pdf"), 404, "download_not_found");
    assertError(await user.request(node, "GET", "/download"), 404, "download_not_found");

    const cluster = await user.request(node, "GET", "/cluster");
    assert.equal(cluster.status, 200);
    assert.deepEqual(cluster.json, {
      node: "solo",
      leader: "solo",
      nodes: [{ name: "solo", version: "0.1.0", alive: true, leader: true }],
    });
    const client = await user.request(node, "GET", "/api/live/client.js");
    assert.equal(client.status, 200);
    assert.match(client.text, /class LiveClient/);
    // Only the live stream of Conveyor is mounted, and it opens no system channel and no one else's.
    assert.equal((await user.request(node, "GET", "/api/tasks")).status, 404);
    assert.equal((await user.request(node, "GET", "/api/live/sse?channels=tasks")).status, 401);
    assert.equal((await user.request(node, "GET", `/api/live/sse?channels=download:${user.userId}`)).status, 403);
    const head = await fetch(`${node.url}/download`, { method: "HEAD", headers: { cookie: user.cookie! } });
    assert.equal(head.status, 404);
  });
});

describe("the balancer", () => {
  it("spreads requests, skips a node that refuses, and carries SSE and the live stream's WebSocket", async () => {
    const dead = await freePort();
    const balancer = new WatchedProcess("balancer", [join(import.meta.dirname, "balancer.ts")], {
      env: { ...process.env, BALANCER_PORT: "0", UPSTREAMS: `${dead},${node.port}` },
    });
    try {
      const line = await balancer.until(
        "it to listen",
        () => balancer.lines.find((l) => /listening on/.test(l.text)),
        10_000,
      );
      const front = { url: `http://127.0.0.1:${/localhost:(\d+)/.exec(line.text)![1]}` };
      const user = await new User().visit(front);
      for (let i = 0; i < 4; i++) assert.equal((await user.request(front, "GET", "/cluster")).json.node, "solo");
      const events = await user.events(front);
      const id = (await user.request(front, "POST", "/download")).json.id;
      await events.state("processing", id);
      const socket = new WebSocket(`ws://${new URL(front.url).host}/api/live`);
      const welcome = await new Promise<any>((resolve, reject) => {
        socket.onmessage = (message) => resolve(JSON.parse(String(message.data)));
        socket.onerror = () => reject(new Error("the WebSocket through the balancer failed"));
      });
      assert.equal(welcome.type, "welcome");
      socket.close();
      assert.equal((await user.request(front, "DELETE", "/download")).status, 204);
      events.close();
    } finally {
      balancer.process.kill("SIGKILL");
      await balancer.exited;
    }
  });
});

describe("failures and restarts", () => {
  it("shows `error` when a download fails for good, and a new request may follow", async () => {
    const failing = await nodes.start("failing", {
      DATA_DIR: nodes.tempDir(),
      ...TIMINGS,
      DOWNLOAD_FAIL_RATE: "1",
      DOWNLOAD_ATTEMPTS: "2",
    });
    const user = await new User().visit(failing);
    const events = await user.events(failing);
    const id = (await user.request(failing, "POST", "/download")).json.id;
    const error = await events.state("error", id, 15_000);
    assertDownload(error.data, { id, file_url: null, node: "failing" });
    assert.deepEqual(
      updates(events.frames, id),
      ["pending", "processing", "error"],
      "the retry goes on from processing",
    );
    assertDownload((await user.request(failing, "GET", "/download")).json, { id, state: "error" });
    const page = await user.request(failing, "GET", "/");
    assert.match(page.text, /The file could not be generated/);
    assert.equal((await user.request(failing, "DELETE", "/download")).status, 204);
    assertError(await user.request(failing, "GET", "/download"), 404, "download_not_found");
    await events.next("the removal", (f) => f.event === "removed" && f.data.id === id);
    const again = await user.request(failing, "POST", "/download");
    assert.equal(again.status, 201);
    events.close();
    failing.process.kill("SIGKILL");
  });

  it("on SIGTERM hands the download back; the next start resumes it from its last step, same id", async () => {
    const dir = nodes.tempDir();
    const env = { DATA_DIR: dir, ...TIMINGS, DOWNLOAD_READY_MS: "3000" };
    const first = await nodes.start("first", env);
    const user = await new User().visit(first);
    const events = await user.events(first);
    const id = (await user.request(first, "POST", "/download")).json.id;
    const progress = await events.next("30% done", (f) => f.event === "progress" && f.data.percent === 30);
    first.process.kill("SIGTERM");
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    assert.ok(first.said("Stopped.").length === 1);

    const second = await nodes.start("second", env);
    const resumed = await user.events(second, progress.id!);
    const ready = await resumed.state("ready", id);
    assertDownload(ready.data, { id, node: "second" });
    const percents = resumed.events.filter((f) => f.event === "progress").map((f) => f.data.percent);
    assert.deepEqual(percents, [30, 40, 50, 60, 70, 80, 90], "taken over at 30%, then on from there");
    assert.deepEqual(updates(resumed.frames, id), ["ready"], "no step pushed again");
    resumed.close();
    events.close();
  });
});
