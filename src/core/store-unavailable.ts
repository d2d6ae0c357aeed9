/**
 * The store is slow or gone: its server refuses or drops connections, a query or a connection attempt passes its
 * deadline (a partition: bytes that never come back), or another process holds SQLite's write lock for longer than
 * the store waits. None of it is the request's fault and all of it passes, so the API answers 503
 * `store_unavailable` with a Retry-After, rather than a 500 or no answer at all.
 *
 * Stores throw StoreUnavailableError where they decide it themselves (a deadline of their own); the errors their
 * drivers raise are recognised by shape in isStoreUnavailable, so that no call site has to translate them.
 */
import { ConveyorError } from "./errors.ts";

export class StoreUnavailableError extends ConveyorError {
  constructor(message: string, cause?: unknown) {
    super("store_unavailable", message, { cause });
  }
}

/** Socket errors: the server is down, restarting, or on the far side of a broken network. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
]);

/**
 * PostgreSQL SQLSTATEs that say the server cannot serve now: class 08 (connection exception), 57P01–57P03
 * (administrator or crash shutdown, cannot connect now), 53300 (too many connections).
 */
function unavailableSqlState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/**
 * node-postgres and pg-pool say "timeout" and "terminated" in words only: a connection attempt or a pool wait past
 * connectionTimeoutMillis, a query past query_timeout, a connection that died under a query, a client that was
 * already broken.
 */
const PG_MESSAGES = [
  /^timeout exceeded when trying to connect$/,
  /^Query read timeout$/,
  /^Connection terminated/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
];

/** SQLite's primary result code for a lock another connection holds (extended codes keep it in their low byte). */
const SQLITE_BUSY = 5;

/** Whether `error` (or what it wraps) means the store could not be reached or did not answer in time. */
export function isStoreUnavailable(error: unknown): boolean {
  for (let depth = 0; depth < 4 && typeof error === "object" && error !== null; depth++) {
    if (error instanceof StoreUnavailableError) return true;
    const { code, errcode, message } = error as { code?: unknown; errcode?: unknown; message?: unknown };
    if (
      typeof code === "string" &&
      (NETWORK_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && unavailableSqlState(code)))
    )
      return true;
    if (code === "ERR_SQLITE_ERROR" && typeof errcode === "number" && (errcode & 0xff) === SQLITE_BUSY) return true;
    if (typeof message === "string" && PG_MESSAGES.some((pattern) => pattern.test(message))) return true;
    // AggregateError (a connect that tried several addresses) and wrapped errors carry the cause inside.
    const inner = error as { cause?: unknown; errors?: unknown };
    error = Array.isArray(inner.errors) ? inner.errors[0] : inner.cause;
  }
  return false;
}
