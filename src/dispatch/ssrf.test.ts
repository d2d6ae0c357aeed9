/**
 * The SSRF guard end to end, with real sockets to loopback only: every spelling of a loopback or unspecified address
 * is refused before a byte is sent unless it is allow-listed, and a redirect is never followed. Addresses outside
 * loopback are only ever handed to the sender through a resolver the test injects, behind a tripwire that refuses
 * to let a socket dial them: a broken guard would fail these tests, never reach a network.
 */
import assert from "node:assert/strict";
import type { LookupAddress } from "node:dns";
import { after, before, describe, test } from "node:test";
import { loopbackTripwire } from "./fixtures/dispatch-node.ts";
import { Receiver } from "./fixtures/receiver.ts";
import { HttpSender, type SendResult } from "./http-sender.ts";
import { type LookupFunction, parseAllowNets } from "./ssrf-guard.ts";

const v4 = new Receiver();
const v6 = new Receiver();

before(async () => {
  await v4.start(0, "127.0.0.1");
  await v6.start(0, "::1");
});

after(async () => {
  await v4.stop();
  await v6.stop();
});

function targets() {
  return [
    `http://127.0.0.1:${v4.port}/hook`,
    `http://[::1]:${v6.port}/hook`,
    `http://localhost:${v4.port}/hook`,
    `http://[::ffff:127.0.0.1]:${v4.port}/hook`,
    `http://0.0.0.0:${v4.port}/hook`,
    `http://127.1:${v4.port}/hook`,
  ];
}

async function post(sender: HttpSender, target: string): Promise<SendResult> {
  return sender.send({ target, body: "{}", headers: {}, timeoutMs: 2000, signal: new AbortController().signal });
}

/** Resolves every name to `addresses` (what a hostile DNS would answer). */
function resolverOf(addresses: string[]): LookupFunction {
  return (_hostname, _options, callback) =>
    callback(null, addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })) as LookupAddress[]);
}

describe("SSRF end to end", () => {
  test("loopback in every spelling, and 0.0.0.0, are refused unless allow-listed: nothing reaches the receiver", async () => {
    const dialled: string[] = [];
    const sender = new HttpSender({ policy: { allow: [] }, interceptLookup: loopbackTripwire(dialled) });
    try {
      for (const target of targets()) {
        const before = v4.requests.length + v6.requests.length;
        const result = await post(sender, target);
        assert.equal(result.status, null, target);
        assert.match(result.error!, /refused to connect/, target);
        assert.equal(v4.requests.length + v6.requests.length, before, `${target} reached a receiver`);
      }
    } finally {
      sender.close();
    }
    assert.deepEqual(dialled, []);
  });

  test("allow-listed, the same targets are delivered", async () => {
    const dialled: string[] = [];
    const allow = parseAllowNets("127.0.0.0/8, ::1/128, 0.0.0.0/32");
    const sender = new HttpSender({ policy: { allow }, interceptLookup: loopbackTripwire(dialled) });
    try {
      for (const target of targets()) {
        const result = await post(sender, target);
        assert.equal(result.status, 200, `${target}: ${result.error}`);
      }
    } finally {
      sender.close();
    }
    assert.equal(v4.requests.length + v6.requests.length, targets().length);
    assert.deepEqual(dialled, []);
  });

  test("a redirect is a failed attempt, never followed", async () => {
    const other = await new Receiver().start();
    v4.answer = () => ({ status: 302, headers: { location: other.url("/elsewhere") } });
    const sender = new HttpSender({ policy: { allow: parseAllowNets("127.0.0.0/8") } });
    try {
      const result = await post(sender, v4.url());
      assert.equal(result.status, 302);
      assert.equal(result.error, "the receiver answered 302");
      assert.equal(other.requests.length, 0);
    } finally {
      v4.answer = () => ({ status: 200, body: "ok" });
      sender.close();
      await other.stop();
    }
  });

  test("names resolving to private, link-local or metadata addresses are refused in the lookup", async () => {
    for (const address of ["10.0.0.5", "172.16.5.5", "192.168.1.20", "169.254.169.254", "fd00:ec2::254", "fe80::1"]) {
      const dialled: string[] = [];
      const sender = new HttpSender({
        policy: { allow: [] },
        resolve: resolverOf([address]),
        interceptLookup: loopbackTripwire(dialled),
      });
      try {
        const result = await post(sender, `http://internal.test:${v4.port}/`);
        assert.match(result.error!, /refused to connect to internal\.test/, address);
      } finally {
        sender.close();
      }
      assert.deepEqual(dialled, [], "the guard refused before the tripwire saw anything");
    }
  });

  test("DNS rebinding: a name that resolves to a private address next to a loopback one gets only what passes", async () => {
    const dialled: string[] = [];
    const sender = new HttpSender({
      policy: { allow: parseAllowNets("127.0.0.1") },
      resolve: resolverOf(["10.0.0.5", "127.0.0.1"]),
      interceptLookup: loopbackTripwire(dialled),
    });
    try {
      const result = await post(sender, `http://rebind.test:${v4.port}/hook`);
      assert.equal(result.status, 200, String(result.error));
    } finally {
      sender.close();
    }
    assert.deepEqual(dialled, []);
  });

  test("the tripwire itself: with a guard that lets everything through, a private address is still never dialled", async () => {
    const dialled: string[] = [];
    const sender = new HttpSender({
      policy: { allow: parseAllowNets("0.0.0.0/0, ::/0") },
      resolve: resolverOf(["10.0.0.5"]),
      interceptLookup: loopbackTripwire(dialled),
    });
    try {
      const result = await post(sender, "http://internal.test:9/");
      assert.match(result.error!, /tripwire/);
    } finally {
      sender.close();
    }
    assert.deepEqual(dialled, ["10.0.0.5"]);
  });
});
