/**
 * Subscription tokens: what an application's own server gives its user's browser so that it may follow some
 * application channels (and publish to some), and no others. A token is
 *
 *   v1.<payload>.<signature>
 *
 * where payload is the base64url JSON `{ "c": [patterns it may follow], "p": [patterns it may publish to],
 * "exp": expiry in epoch ms }` and signature the base64url HMAC-SHA256 of `v1.<payload>` under the secret the
 * nodes share (CONVEYOR_LIVE_SECRET). Patterns are application channel names or prefixes ending in `*`
 * (core/channels.ts). Verification checks the signature in constant time before it reads anything else.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { isChannelPattern, patternMatches } from "./channels.ts";

export type LiveGrant = { channels: string[]; publish: string[]; expiresAt: number };

export type LiveTokenRefusal = "token_malformed" | "token_signature" | "token_expired";

const PREFIX = "v1";
/** Longest a token may be (a few hundred patterns); a longer one is refused before any work. */
const MAX_TOKEN_LENGTH = 16_384;

function signature(secret: string, signed: string): string {
  return createHmac("sha256", secret).update(signed).digest("base64url");
}

/** Mints a token for `channels` (to follow) and `publish` (to publish to), valid for `ttlMs`. */
export function signLiveToken(
  secret: string,
  grant: { channels: string[]; publish?: string[]; ttlMs: number },
  now = Date.now(),
): string {
  if (typeof secret !== "string" || secret.length < 16)
    throw new TypeError("the live secret must be at least 16 characters");
  const patterns = [...grant.channels, ...(grant.publish ?? [])];
  const bad = patterns.find((pattern) => !isChannelPattern(pattern));
  if (bad !== undefined) throw new TypeError(`not an application channel or pattern: ${JSON.stringify(bad)}`);
  if (!Number.isSafeInteger(grant.ttlMs) || grant.ttlMs <= 0) throw new TypeError("ttlMs must be a positive integer");
  const payload = Buffer.from(
    JSON.stringify({ c: grant.channels, p: grant.publish ?? [], exp: now + grant.ttlMs }),
  ).toString("base64url");
  const signed = `${PREFIX}.${payload}`;
  return `${signed}.${signature(secret, signed)}`;
}

/** The grant a token carries, or why it is refused. */
export function verifyLiveToken(secret: string, token: unknown, now = Date.now()): LiveGrant | LiveTokenRefusal {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return "token_malformed";
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== PREFIX) return "token_malformed";
  const signed = `${parts[0]}.${parts[1]}`;
  const given = Buffer.from(parts[2]!, "base64url");
  const expected = Buffer.from(signature(secret, signed), "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "token_signature";
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  } catch {
    return "token_malformed";
  }
  const { c, p, exp } = (claims ?? {}) as { c?: unknown; p?: unknown; exp?: unknown };
  const patterns = (list: unknown): list is string[] => Array.isArray(list) && list.every(isChannelPattern);
  if (!patterns(c) || !patterns(p) || typeof exp !== "number") return "token_malformed";
  if (exp <= now) return "token_expired";
  return { channels: c, publish: p, expiresAt: exp };
}

export function grantAllows(patterns: readonly string[], channel: string): boolean {
  return patterns.some((pattern) => patternMatches(pattern, channel));
}
