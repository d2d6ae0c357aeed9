/**
 * `GET /`: a small page for a person who opens the node in a browser, pointing at what there is to see,
 * until the dashboard is served here.
 */
import type { FastifyInstance } from "fastify";
import { TASK_STATES } from "../../core/states.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";

export function registerHomeRoute(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    const queues = await conveyor.queues();
    const rows = queues
      .map(
        (q) =>
          `<tr><td>${escapeHtml(q.queue)}${q.paused ? " (paused)" : ""}</td>${TASK_STATES.map(
            (s) => `<td>${q.counts[s]}</td>`,
          ).join("")}</tr>`,
      )
      .join("");
    return reply.type("text/html; charset=utf-8").send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conveyor · ${escapeHtml(conveyor.nodeName)}</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:46rem;color:#222}td,th{padding:.2rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}a{color:#0a58ca}</style></head><body>
<h1>Conveyor</h1>
<p>Node <b>${escapeHtml(conveyor.nodeName)}</b> (${escapeHtml(conveyor.nodeId)}), version ${escapeHtml(conveyor.options.version)}, on ${escapeHtml(conveyor.store.capabilities.driver)}, ${escapeHtml(conveyor.state)}.</p>
<table><tr><th>queue</th>${TASK_STATES.map((s) => `<th>${s}</th>`).join("")}</tr>${rows}</table>
<p>The live dashboard is not served yet. Meanwhile:
<a href="/api/tasks">tasks</a> · <a href="/api/queues">queues</a> · <a href="/api/nodes">nodes</a> ·
<a href="/api/schedules">schedules</a> · <a href="/api/health">health</a> · <a href="/metrics">metrics</a> ·
<a href="/api/openapi.json">OpenAPI</a></p>
</body></html>`);
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
