/**
 * The SSRF guard at the policy and lookup level: private, link-local, metadata and reserved addresses are judged
 * here, with a resolver the test injects. Nothing here opens a socket.
 */
import assert from "node:assert/strict";
import type { LookupAddress } from "node:dns";
import { test } from "node:test";
import {
  AddressRefusedError,
  addressRefusal,
  guardedLookup,
  literalRefusal,
  type LookupFunction,
  parseAllowNets,
} from "./ssrf-guard.ts";

const CLOSED = { allow: [] };

const REFUSED = [
  ["127.0.0.1", "loopback"],
  ["127.255.0.9", "loopback"],
  ["0.0.0.0", "unspecified"],
  ["10.0.0.1", "private"],
  ["10.255.255.255", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.254", "private"],
  ["192.168.1.1", "private"],
  ["169.254.169.254", "linkLocal"],
  ["169.254.0.1", "linkLocal"],
  ["100.64.0.1", "carrierGradeNat"],
  ["192.0.0.170", "reserved"],
  ["192.0.2.1", "reserved"],
  ["198.18.0.1", "reserved"],
  ["240.0.0.1", "reserved"],
  ["224.0.0.251", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["::1", "loopback"],
  ["::", "unspecified"],
  ["fe80::1", "linkLocal"],
  ["fc00::1", "uniqueLocal"],
  ["fd00:ec2::254", "uniqueLocal"],
  ["ff02::1", "multicast"],
  ["2001:db8::1", "reserved"],
  ["64:ff9b::a00:1", "rfc6052"],
  ["2002:a00:1::", "6to4"],
  ["2001::1", "teredo"],
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:10.0.0.1", "private"],
  ["::ffff:169.254.169.254", "linkLocal"],
] as const;

test("every private, loopback, link-local, metadata and reserved range is refused", () => {
  for (const [address, range] of REFUSED) {
    const refusal = addressRefusal(address, CLOSED);
    assert.ok(refusal !== null, `${address} was allowed`);
    assert.match(refusal, new RegExp(range), address);
  }
});

test("public unicast addresses pass", () => {
  for (const address of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
    assert.equal(addressRefusal(address, CLOSED), null, address);
  assert.match(addressRefusal("not an address", CLOSED)!, /not an IP address/);
});

test("the allow-list lets its networks through, IPv4-mapped forms included, and nothing else", () => {
  const policy = { allow: parseAllowNets("10.1.0.0/16, fd00::/8 127.0.0.1") };
  assert.equal(addressRefusal("10.1.2.3", policy), null);
  assert.equal(addressRefusal("::ffff:10.1.2.3", policy), null);
  assert.equal(addressRefusal("fd12::1", policy), null);
  assert.equal(addressRefusal("127.0.0.1", policy), null);
  assert.notEqual(addressRefusal("127.0.0.2", policy), null);
  assert.notEqual(addressRefusal("10.2.0.1", policy), null);
  assert.notEqual(addressRefusal("169.254.169.254", policy), null);
  assert.deepEqual(parseAllowNets(""), []);
  assert.deepEqual(parseAllowNets(undefined), []);
  assert.throws(() => parseAllowNets("10.0.0.0/33"), /CONVEYOR_DISPATCH_ALLOW_NETS/);
  assert.throws(() => parseAllowNets("intranet"), /CONVEYOR_DISPATCH_ALLOW_NETS/);
});

test("IP literals of URLs are judged as they are; names are left to the lookup", () => {
  assert.match(literalRefusal("127.0.0.1", CLOSED)!, /loopback/);
  assert.match(literalRefusal("[::1]", CLOSED)!, /loopback/);
  assert.match(literalRefusal("[::ffff:7f00:1]", CLOSED)!, /loopback/);
  assert.match(literalRefusal("0.0.0.0", CLOSED)!, /unspecified/);
  assert.equal(literalRefusal("127.1", CLOSED), null, "not a literal: the lookup judges what it resolves to");
  assert.equal(literalRefusal("example.com", CLOSED), null);
});

/** A resolver that answers `addresses` for every name, recording what it was asked. */
function fakeResolver(addresses: string[], asked: string[] = []): LookupFunction {
  return (hostname, _options, callback) => {
    asked.push(hostname);
    callback(null, addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })) as LookupAddress[]);
  };
}

function lookup(fn: LookupFunction, hostname: string, all: boolean) {
  return new Promise<{ error: Error | null; address: unknown }>((resolve) =>
    fn(hostname, { all }, (error, address) => resolve({ error, address })),
  );
}

test("the lookup refuses a name whose every address is refused, so no socket gets one", async () => {
  for (const address of ["10.0.0.5", "169.254.169.254", "fd00:ec2::254", "172.20.1.1", "192.168.0.10", "fe80::1"]) {
    const asked: string[] = [];
    const guarded = guardedLookup(CLOSED, fakeResolver([address], asked));
    for (const all of [true, false]) {
      const { error, address: given } = await lookup(guarded, "metadata.internal.test", all);
      assert.ok(error instanceof AddressRefusedError, `${address} (all: ${all}) was not refused`);
      assert.match(error.message, /refused to connect to metadata\.internal\.test/);
      assert.equal(given, "");
    }
    assert.deepEqual(asked, ["metadata.internal.test", "metadata.internal.test"]);
  }
});

test("a name resolving to public and private addresses keeps only the public ones (rebinding gets nothing)", async () => {
  const guarded = guardedLookup(CLOSED, fakeResolver(["10.0.0.1", "93.184.216.34", "::1", "2606:4700::1"]));
  const many = await lookup(guarded, "mixed.test", true);
  assert.equal(many.error, null);
  assert.deepEqual(
    (many.address as LookupAddress[]).map((a) => a.address),
    ["93.184.216.34", "2606:4700::1"],
  );
  const one = await lookup(guarded, "mixed.test", false);
  assert.equal(one.address, "93.184.216.34");
});

test("with an allow-list, the lookup passes its networks", async () => {
  const guarded = guardedLookup({ allow: parseAllowNets("10.0.0.0/8") }, fakeResolver(["10.9.8.7"]));
  assert.equal((await lookup(guarded, "onprem.test", false)).address, "10.9.8.7");
});

test("a resolver's own error passes through", async () => {
  const failing: LookupFunction = (_hostname, _options, callback) =>
    callback(Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.test"), { code: "ENOTFOUND" }), "");
  const { error } = await lookup(guardedLookup(CLOSED, failing), "nowhere.test", true);
  assert.match(error!.message, /ENOTFOUND/);
});
