/**
 * The live stream's endpoints on a Fastify app: WebSocket at `/api/live`, Server-Sent Events at
 * `/api/live/sse` (docs/live-protocol.md), and the browser client at `/api/live/client.js`.
 */
import websocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import { bearerToken } from "../core/bearer.ts";
import { Access, type AccessPolicy } from "./access.ts";
import { clientModule } from "./client-module.ts";
import type { LiveNode } from "./live-node.ts";
import { serveSse } from "./sse.ts";
import { LiveSession, type LiveSessionOptions } from "./websocket.ts";

export type LiveRoutesOptions = {
  node: LiveNode;
  /** The API's tokens (admin, write: CONVEYOR_TOKEN, read: CONVEYOR_READ_TOKEN); null where the node has none. */
  tokens: { admin: string | null; write: string | null; read: string | null };
  heartbeatMs?: number;
  maxBufferBytes?: number;
};

/** Largest frame a client may send. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_BUFFER_BYTES = 1024 * 1024;

export async function registerLiveRoutes(app: FastifyInstance, options: LiveRoutesOptions): Promise<void> {
  const { node } = options;
  const policy: AccessPolicy = { tokens: options.tokens, verify: node.verifyToken };
  const session: LiveSessionOptions = {
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    maxBufferBytes: options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES,
  };
  await app.register(websocket, {
    options: { maxPayload: MAX_FRAME_BYTES },
    // A stopping node says so (1001): its clients reconnect, to it or another node, from their last offset.
    preClose: async function closeClients(this: FastifyInstance) {
      for (const client of this.websocketServer.clients) client.close(1001, "the node is stopping");
      await new Promise<void>((resolve) => this.websocketServer.close(() => resolve()));
    },
  });
  app.get("/api/live", { websocket: true, schema: { hide: true } }, (socket, request) => {
    const access = new Access(policy);
    const query = request.query as { token?: unknown };
    access.presentApiToken(
      bearerToken(request.headers.authorization) ?? (typeof query.token === "string" ? query.token : null),
    );
    new LiveSession(socket, node, access, session);
  });
  app.get("/api/live/sse", { schema: { hide: true } }, (request, reply) =>
    serveSse(request, reply, node, policy, session),
  );
  // The client as an ES module, for `import { LiveClient } from "http://node/api/live/client.js"`, from pages of
  // any origin (it is public code, and carries no credentials); revalidated by its ETag.
  app.get("/api/live/client.js", { schema: { hide: true } }, async (request, reply) => {
    const { text, etag } = await clientModule();
    reply
      .header("access-control-allow-origin", "*")
      .header("cache-control", "no-cache")
      .header("etag", etag)
      .type("text/javascript; charset=utf-8");
    if (request.headers["if-none-match"] === etag) return reply.code(304).send();
    return text;
  });
}
