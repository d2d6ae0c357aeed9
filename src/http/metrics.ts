/**
 * Prometheus metrics for one server. Each server owns its registry (never prom-client's global one), so
 * several servers in one process, as in tests, do not clash over metric names. Task counts are read from
 * the store at scrape time rather than tracked in memory: the store is the truth, and other nodes change it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TASK_STATES } from "../core/states.ts";
import type { Conveyor } from "../runtime/conveyor.ts";

export type ServerMetrics = { registry: Registry };

export function createMetrics(conveyor: Conveyor): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: "conveyor_tasks",
    help: "Tasks in the store, per queue and state.",
    labelNames: ["queue", "state"],
    registers: [registry],
    async collect() {
      const queues = await conveyor.queues();
      this.reset();
      for (const stats of queues) {
        for (const state of TASK_STATES) this.set({ queue: stats.queue, state }, stats.counts[state]);
      }
    },
  });
  new Gauge({
    name: "conveyor_queue_paused",
    help: "1 when the queue is paused.",
    labelNames: ["queue"],
    registers: [registry],
    async collect() {
      const queues = await conveyor.queues();
      this.reset();
      for (const stats of queues) this.set({ queue: stats.queue }, stats.paused ? 1 : 0);
    },
  });
  new Gauge({
    name: "conveyor_node_info",
    help: "This node: always 1, with its identity as labels.",
    labelNames: ["node", "name", "version", "driver", "state"],
    registers: [registry],
    collect() {
      this.reset();
      const labels = {
        node: conveyor.nodeId,
        name: conveyor.nodeName,
        version: conveyor.options.version,
        driver: conveyor.store.capabilities.driver,
        state: conveyor.state,
      };
      this.set(labels, 1);
    },
  });
  return { registry };
}

/** Count and time every request by its route pattern (never the raw URL, which would explode the labels). */
export function installRequestMetrics(app: FastifyInstance, { registry }: ServerMetrics): void {
  const requests = new Counter({
    name: "conveyor_http_requests_total",
    help: "HTTP requests answered, by method, route and status.",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "conveyor_http_request_duration_seconds",
    help: "Time to answer HTTP requests, by method and route.",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [registry],
  });
  app.addHook("onResponse", async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url ?? "unmatched";
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  app.addHook("onClose", async () => registry.clear());
}
