/**
 * Standard Webhooks signing (standardwebhooks.com, spec v1): a publisher with secrets sends
 *
 *   webhook-id:        an id that stays the same across retries (the delivery's): the receiver's idempotency key
 *   webhook-timestamp: unix seconds of this attempt
 *   webhook-signature: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per live secret, space-separated
 *
 * Secrets are `whsec_` + base64 of 24 random bytes. Rotating one puts a new secret first and keeps the old one
 * signing beside it until it expires, so a receiver can switch secrets with no message refused in between.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { SigningSecret } from "../store/dispatch-store.ts";

export const SECRET_PREFIX = "whsec_";
/** How long a rotated-out secret keeps signing (Svix's default grace period). */
export const ROTATION_GRACE_MS = 24 * 3600 * 1000;

export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString("base64");
}

/** Whether `secret` is `whsec_` + base64 of 24 to 64 bytes (what the Standard Webhooks libraries accept). */
export function isValidSecret(secret: unknown): secret is string {
  if (typeof secret !== "string" || !secret.startsWith(SECRET_PREFIX)) return false;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return false;
  const bytes = Buffer.from(encoded, "base64").length;
  return bytes >= 24 && bytes <= 64;
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The secrets still signing at `now`: the current one and those rotated out less than their grace ago. */
export function liveSecrets(secrets: SigningSecret[], now: Date): SigningSecret[] {
  return secrets.filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime());
}

/** The Standard Webhooks headers of one attempt, or none when the publisher has no live secret. */
export function signatureHeaders(
  secrets: SigningSecret[],
  id: string,
  now: Date,
  body: string,
): Record<string, string> {
  const live = liveSecrets(secrets, now);
  if (live.length === 0) return {};
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": live.map((s) => sign(s.secret, id, timestamp, body)).join(" "),
  };
}

/** Secrets after a rotation to `next` at `now`: it first, the others expiring within the grace (if not sooner). */
export function rotate(
  secrets: SigningSecret[],
  next: string,
  now: Date,
  graceMs = ROTATION_GRACE_MS,
): SigningSecret[] {
  const expiresAt = new Date(now.getTime() + graceMs).toISOString();
  const kept = liveSecrets(secrets, now).map((s) => ({
    secret: s.secret,
    expiresAt: s.expiresAt === null || Date.parse(s.expiresAt) > Date.parse(expiresAt) ? expiresAt : s.expiresAt,
  }));
  return [{ secret: next, expiresAt: null }, ...kept];
}
