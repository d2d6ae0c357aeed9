/**
 * Cross-origin requests: closed by default (no Access-Control-Allow-Origin on any response, so a page of another
 * origin cannot read the API's answers nor send it JSON), opened to the origins listed (CONVEYOR_CORS_ORIGINS, a
 * comma-separated list; `*` for any) with @fastify/cors, registered inside Conveyor's routes so that it answers for
 * them alone. Tokens travel in the Authorization header, never in cookies: credentials stay off. The live stream's
 * browser client (/api/live/client.js) is public code and stays readable from any origin either way.
 */
import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";

/** `"https://a.example, https://b.example"` → the list; empty or blank → null (closed). */
export function parseCorsOrigins(text: string | undefined | null): string[] | null {
  if (text === undefined || text === null) return null;
  const origins = text
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  return origins.length === 0 ? null : origins;
}

export async function installCors(app: FastifyInstance, origins: readonly string[] | null | undefined): Promise<void> {
  if (origins === null || origins === undefined || origins.length === 0) return;
  await app.register(cors, {
    origin: origins.includes("*") ? "*" : [...origins],
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: ["authorization", "content-type", "last-event-id", "idempotency-key"],
    exposedHeaders: ["retry-after", "location"],
    credentials: false,
    maxAge: 600,
    // An OPTIONS without Origin is no preflight; answer it plainly rather than with a text/plain 400.
    strictPreflight: false,
  });
}
