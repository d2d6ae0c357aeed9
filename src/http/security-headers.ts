/**
 * Security headers on every response of Conveyor's own routes (the dashboard's page and assets, the API, the
 * stream's endpoints), and only on theirs: the hook is registered inside conveyorRoutes, so a host app that mounts
 * Conveyor under a prefix keeps its own headers everywhere else.
 *
 * The content security policy is strict: scripts and styles only from the node's own files (the dashboard is built
 * into hashed files, with no inline script or style; React sets its `style` props through the DOM, which no policy
 * governs, so not even `style` attributes are allowed), no plugins, no framing by any page (`frame-ancestors 'none'`,
 * and X-Frame-Options for browsers that predate it), and connections (fetch, the live stream's WebSocket and SSE)
 * to the node's own origin only. test/browser/dashboard.test.ts fails on any console error, which is where Chromium
 * reports a violation.
 */
import type { FastifyInstance } from "fastify";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  // The page carries <base href="<prefix>/">, which is on the node's own origin.
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook("onRequest", async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
}
