/**
 * The node and its cluster: /api/health (queries the store for real), /api/node (identity and supervision
 * tree), /api/nodes (membership from the store's node rows, and the leader) and /metrics (Prometheus text).
 */
import type { FastifyInstance } from "fastify";
import { scopeOf, type Tokens } from "../auth.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";
import type { ServerMetrics } from "../metrics.ts";
import { errorReplies, healthReply, nodeReply, nodesReply, whoamiReply } from "../schemas.ts";

const tags = ["node"];

export function registerNodeRoutes(
  app: FastifyInstance,
  { conveyor, metrics, tokens }: { conveyor: Conveyor; metrics: ServerMetrics; tokens: Tokens },
): void {
  app.get(
    "/api/whoami",
    {
      schema: {
        summary: "What the token given allows (none, read, write, admin), and which tokens this node requires",
        tags,
        response: { 200: whoamiReply, ...errorReplies },
      },
    },
    async (request) => ({
      scope: scopeOf(tokens, request.headers.authorization),
      tokens: { read: tokens.read !== null, write: tokens.write !== null, admin: tokens.admin !== null },
    }),
  );

  app.get(
    "/api/health",
    {
      schema: {
        summary: "Whether this node is running, its store answers and its bus is connected; 503 otherwise",
        tags,
        response: { 200: healthReply, 503: healthReply, ...errorReplies },
      },
    },
    async (_request, reply) => {
      const health = await conveyor.health();
      const store: { ok: boolean; driver: string; error?: string } = {
        ok: health.store.ok,
        driver: conveyor.store.capabilities.driver,
      };
      if (health.store.error !== undefined) store.error = health.store.error;
      // A bus that connects to a server (LISTEN/NOTIFY, RabbitMQ) says whether its connection is up; the in-process
      // one always is. `status` is Postoffice's word ("ok" / "ko"), so that its clients read this answer as theirs.
      const connected = (conveyor.bus as { connected?: boolean }).connected;
      const bus = { ok: connected ?? true };
      const ok = health.ok && bus.ok;
      return reply
        .code(ok ? 200 : 503)
        .send({ status: ok ? "ok" : "ko", node: conveyor.nodeId, state: health.state, store, bus });
    },
  );

  app.get(
    "/api/node",
    {
      schema: {
        summary: "This node: identity, version, store driver and supervision tree",
        tags,
        response: { 200: nodeReply, ...errorReplies },
      },
    },
    async () => ({
      id: conveyor.nodeId,
      name: conveyor.nodeName,
      version: conveyor.options.version,
      state: conveyor.state,
      driver: conveyor.store.capabilities.driver,
      tree: conveyor.supervisionTree(),
      faultInjection: conveyor.options.allowFaultInjection,
    }),
  );

  app.get(
    "/api/nodes",
    {
      schema: {
        summary: "The cluster: its leader and every node with heartbeat age, version and supervision tree",
        tags,
        response: { 200: nodesReply, ...errorReplies },
      },
    },
    async () => {
      const position = await conveyor.live.position();
      return { ...(await conveyor.cluster()), position };
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics: tasks per queue and state, HTTP requests, process",
        tags,
        produces: ["text/plain"],
        response: { 200: { type: "string", description: "Prometheus text exposition format." } },
      },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.header("content-type", metrics.registry.contentType).send(text);
    },
  );
}
