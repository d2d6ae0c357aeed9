/**
 * Cases the fuzzers found, as plain tests on both stores. PostgreSQL cannot store a NUL character (text or jsonb)
 * or a lone UTF-16 surrogate (jsonb; in text it becomes U+FFFD): each request below answered 500 there, or stored
 * something else than it was given, before src/http/storable-text.ts refused them as a 400 on every store.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ValidationError } from "../../src/core/errors.ts";
import { testStores } from "../../src/runtime/fixtures/test-node.ts";
import { fuzzNode } from "./fuzz-node.ts";

type Case = { method: "GET" | "POST"; url: string; payload?: unknown; postoffice?: boolean };

const CASES: Case[] = [
  { method: "POST", url: "/api/tasks", payload: { type: "echo", key: "a\u0000" } },
  { method: "POST", url: "/api/tasks", payload: { type: "echo", data: "a\ud800b" } },
  { method: "POST", url: "/api/tasks", payload: { type: "echo", data: { "\udfff": 1 } } },
  { method: "GET", url: "/api/tasks?key=a%00" },
  { method: "GET", url: "/api/topics/a%00" },
  { method: "GET", url: "/api/messages?attribute=a%3D%00" },
  {
    method: "POST",
    url: "/api/topics",
    payload: { name: "t\ud800", origin_host: "http://127.0.0.1:9/" },
    postoffice: true,
  },
  { method: "POST", url: "/api/messages", payload: { topic: "orders", payload: { a: "\u0000" } }, postoffice: true },
  { method: "POST", url: "/api/messages", payload: { topic: "orders", payload: { a: "\ud800" } }, postoffice: true },
  {
    method: "POST",
    url: "/api/messages",
    payload: { topic: "orders", payload: { a: 1 }, attributes: { "\u0000": "x" } },
    postoffice: true,
  },
  {
    method: "POST",
    url: "/api/publishers",
    payload: { topic: "orders", target: "http://127.0.0.1:1/\u0000", type: "http" },
    postoffice: true,
  },
];

for (const store of await testStores("fuzz regressions")) {
  describe(`text no store can keep, on ${store}`, () => {
    test("is a 400 naming the field, in the route's error shape, and changes nothing", async () => {
      const node = await fuzzNode(store);
      try {
        for (const c of CASES) {
          const before = await node.snapshot();
          const reply = await node.app.inject({ method: c.method, url: c.url, payload: c.payload as object });
          const what = `${c.method} ${c.url} ${JSON.stringify(c.payload)} → ${reply.statusCode} ${reply.body}`;
          assert.equal(reply.statusCode, 400, what);
          const body = reply.json();
          if (c.postoffice) assert.ok(body.data.errors !== undefined, what);
          else assert.equal(body.error.code, "validation_failed", what);
          assert.match(reply.body, /NUL characters or lone surrogates/, what);
          assert.equal(await node.snapshot(), before, what);
        }
      } finally {
        await node.close();
      }
    });

    test("a refused field named like an Object method is said in Postoffice's shape, not a 500", async () => {
      const node = await fuzzNode(store);
      try {
        for (const key of ["constructor", "toString", "hasOwnProperty"]) {
          const payload = { topic: "orders", target: node.receiver.url(), type: "http", [key]: "a\u0000b" };
          const reply = await node.app.inject({ method: "POST", url: "/api/publishers", payload });
          assert.equal(reply.statusCode, 400, reply.body);
          assert.deepEqual(reply.json(), {
            data: { errors: { [key]: ["must not contain NUL characters or lone surrogates"] } },
          });
        }
      } finally {
        await node.close();
      }
    });

    test("task data with a lone surrogate is refused by the library too", async () => {
      const node = await fuzzNode(store);
      try {
        await assert.rejects(node.conveyor.enqueue("echo", { text: "\ud800" }), ValidationError);
      } finally {
        await node.close();
      }
    });
  });
}
