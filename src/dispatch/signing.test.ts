import assert from "node:assert/strict";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { generateSecret, isValidSecret, liveSecrets, rotate, signatureHeaders } from "./signing.ts";

const NOW = new Date();
const BODY = JSON.stringify({ order: 1, attributes: { kind: "new" } });

test("a signed request verifies with the standardwebhooks library", () => {
  const secret = generateSecret();
  assert.ok(isValidSecret(secret));
  const headers = signatureHeaders([{ secret, expiresAt: null }], "dlv_1", NOW, BODY);
  assert.equal(headers["webhook-id"], "dlv_1");
  assert.equal(headers["webhook-timestamp"], String(Math.floor(NOW.getTime() / 1000)));
  assert.match(headers["webhook-signature"]!, /^v1,[A-Za-z0-9+/]+=*$/);
  assert.deepEqual(new Webhook(secret).verify(BODY, headers), JSON.parse(BODY));
  assert.throws(() => new Webhook(secret).verify(`${BODY} `, headers), "a changed body fails");
  assert.throws(() => new Webhook(generateSecret()).verify(BODY, headers), "another secret fails");
});

test("during a rotation both secrets sign, and either verifies; the old one stops at its expiry", () => {
  const old = generateSecret();
  const next = generateSecret();
  const secrets = rotate([{ secret: old, expiresAt: null }], next, NOW, 60_000);
  assert.deepEqual(
    secrets.map((s) => s.secret),
    [next, old],
  );
  const headers = signatureHeaders(secrets, "dlv_2", NOW, BODY);
  assert.equal(headers["webhook-signature"]!.split(" ").length, 2);
  new Webhook(old).verify(BODY, headers);
  new Webhook(next).verify(BODY, headers);
  const later = new Date(NOW.getTime() + 61_000);
  assert.deepEqual(
    liveSecrets(secrets, later).map((s) => s.secret),
    [next],
  );
  const afterExpiry = signatureHeaders(secrets, "dlv_2", later, BODY);
  assert.equal(afterExpiry["webhook-signature"]!.split(" ").length, 1);
  assert.throws(() => new Webhook(old).verify(BODY, afterExpiry));
});

test("no secret, no signature headers; malformed secrets are refused", () => {
  assert.deepEqual(signatureHeaders([], "dlv_3", NOW, BODY), {});
  for (const bad of ["", "whsec_", "secret", "whsec_!!!!", `whsec_${Buffer.alloc(8).toString("base64")}`, 42])
    assert.equal(isValidSecret(bad), false, String(bad));
});
