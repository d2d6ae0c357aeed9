/**
 * Bearer tokens: reading one from an Authorization header, and comparing it with the configured one in constant
 * time whatever the lengths (both sides are hashed to 32 bytes first).
 */
import { createHash, timingSafeEqual } from "node:crypto";

export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null. The scheme is case-insensitive. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match === null ? null : match[1]!;
}
