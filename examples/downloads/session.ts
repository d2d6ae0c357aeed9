/**
 * The seed's fake authentication (AuthPlug): a signed session cookie carrying a random `user_id`, set when absent.
 * The cookie is `<payload>.<signature>`: payload the base64url JSON `{"u": user_id, "exp": epoch ms}`, signature the
 * base64url HMAC-SHA256 of the payload under a key derived from SESSION_SECRET. Every node shares the secret, so a
 * cookie from one node works on all of them. A cookie that is missing, tampered with, expired or malformed is
 * replaced by a new session: a new user, who sees no one else's download.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** The seed's session cookie name (Phoenix's `_download_manager_key`). */
export const COOKIE_NAME = "_download_manager_key";
export const SESSION_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
/** 10 characters of [A-Za-z0-9_-]: the seed's Token.generate. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{10}$/;

export type Session = { userId: string; expiresAt: number };

/** The seed's Token.generate: 10 random bytes, base64url, the first 10 characters. */
export function newId(): string {
  return randomBytes(10).toString("base64url").slice(0, 10);
}

/** A key for one purpose derived from the shared secret, so the cookie's key never signs anything else. */
export function deriveKey(secret: string, purpose: "session" | "live"): string {
  return createHmac("sha256", secret).update(`downloads:${purpose}`).digest("base64url");
}

function signature(secret: string, payload: string): Buffer {
  return createHmac("sha256", deriveKey(secret, "session")).update(payload).digest();
}

export function signSession(secret: string, session: Session): string {
  const payload = Buffer.from(JSON.stringify({ u: session.userId, exp: session.expiresAt })).toString("base64url");
  return `${payload}.${signature(secret, payload).toString("base64url")}`;
}

/** The session a cookie value carries, or null when it is not one of ours, or expired. */
export function verifySession(secret: string, value: string, now = Date.now()): Session | null {
  if (value.length > 512) return null;
  const [payload, sig, extra] = value.split(".");
  if (payload === undefined || sig === undefined || extra !== undefined) return null;
  const given = Buffer.from(sig, "base64url");
  const expected = signature(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  const { u, exp } = (claims ?? {}) as { u?: unknown; exp?: unknown };
  if (typeof u !== "string" || !ID_PATTERN.test(u) || typeof exp !== "number" || exp <= now) return null;
  return { userId: u, expiresAt: exp };
}

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The Set-Cookie header for a session: HttpOnly, SameSite=Lax, for the whole site, until it expires. */
export function sessionCookie(value: string, session: Session, now = Date.now()): string {
  const maxAge = Math.max(0, Math.floor((session.expiresAt - now) / 1000));
  return `${COOKIE_NAME}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax`;
}

/**
 * The request's session, or a new one: `cookie` is the Set-Cookie header to send when it is new, else null.
 */
export function sessionOf(
  secret: string,
  cookieHeader: string | undefined,
  now = Date.now(),
): { session: Session; cookie: string | null } {
  const value = readCookie(cookieHeader, COOKIE_NAME);
  const existing = value === null ? null : verifySession(secret, value, now);
  if (existing !== null) return { session: existing, cookie: null };
  const session = { userId: newId(), expiresAt: now + SESSION_MAX_AGE_MS };
  return { session, cookie: sessionCookie(signSession(secret, session), session, now) };
}
