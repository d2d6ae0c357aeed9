/**
 * The dashboard (dashboard/, a React app built into dashboard/dist by `npm install` and `npm pack`), served at the
 * root of Conveyor's routes, wherever they are mounted:
 *
 * - its files (`/assets/…`, named by content hash: cached for a year; others revalidated by ETag), gzip-compressed
 *   for clients that accept it (compressed once, on first request);
 * - `index.html` for every other GET outside `/api` and `/metrics`, so that a deep link such as `/tasks/42` opens the
 *   app, which routes in the browser. The page gets `<base href="<prefix>/">`: the app finds its assets, its API and
 *   its live stream under the prefix it is mounted at (`/`, `/conveyor/`…).
 *
 * The files are read once, when the routes are registered. Without a build (a checkout where `npm install` did not
 * run), `/` says how to make one and links to the API.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Conveyor } from "../../runtime/conveyor.ts";

/** dashboard/dist, from src/http/routes (a checkout) or dist/http/routes (the package): both are three levels down. */
export const DASHBOARD_DIST = fileURLToPath(new URL("../../../dashboard/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
  ".map": "application/json; charset=utf-8",
};

const COMPRESSIBLE = new Set([".html", ".js", ".css", ".svg", ".json", ".txt", ".map"]);

type StaticFile = {
  body: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
  compressible: boolean;
  gzip?: Buffer;
};

export type DashboardRoutesOptions = { conveyor: Conveyor; root?: string };

/**
 * Registers the dashboard's files and its page at `/`; returns the fallback for the not-found handler, which serves
 * the page for the app's deep links (a wildcard route would also take the API's malformed paths from its errors).
 */
export function registerDashboardRoutes(
  app: FastifyInstance,
  { conveyor, root = DASHBOARD_DIST }: DashboardRoutesOptions,
): { fallback: (request: FastifyRequest, reply: FastifyReply) => boolean } {
  const prefix = app.prefix;
  const files = readFiles(root);
  const index = files.get("index.html");
  const page =
    index === undefined
      ? notBuilt(conveyor, prefix)
      : file(
          Buffer.from(
            index.body.toString("utf8").replace("<head>", `<head>\n    <base href="${escapeHtml(prefix)}/">`),
          ),
          ".html",
          false,
        );
  files.delete("index.html");
  app.get("/", { schema: { hide: true } }, (request, reply) => send(request, reply, page));
  for (const [path, found] of files) {
    app.get(`/${path}`, { schema: { hide: true } }, (request, reply) => send(request, reply, found));
  }
  return {
    fallback(request, reply) {
      if (request.method !== "GET" && request.method !== "HEAD") return false;
      const url = request.url.split("?")[0]!;
      if (!url.startsWith(`${prefix}/`)) return false;
      const path = url.slice(prefix.length + 1);
      // The API's unknown paths stay JSON 404s, and so do missing files; the app's own paths get the page.
      if (path === "api" || path.startsWith("api/") || path === "metrics" || path.startsWith("assets/")) return false;
      if (/\.[a-z0-9]{1,5}$/i.test(path)) return false;
      void send(request, reply, page);
      return true;
    },
  };
}

function send(request: FastifyRequest, reply: FastifyReply, found: StaticFile) {
  reply
    .header("content-type", found.type)
    .header("etag", found.etag)
    .header("cache-control", found.immutable ? "public, max-age=31536000, immutable" : "no-cache")
    .header("x-content-type-options", "nosniff");
  if (found.type.startsWith("text/html")) reply.header("referrer-policy", "same-origin");
  if (request.headers["if-none-match"] === found.etag) return reply.code(304).send();
  if (found.compressible) reply.header("vary", "accept-encoding");
  if (
    found.compressible &&
    found.body.length > 1024 &&
    /\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""))
  ) {
    found.gzip ??= gzipSync(found.body, { level: 9 });
    return reply.header("content-encoding", "gzip").send(found.gzip);
  }
  return reply.send(found.body);
}

function file(body: Buffer, ext: string, immutable: boolean): StaticFile {
  const etag = `"${createHash("sha1").update(body).digest("base64url").slice(0, 20)}"`;
  return { body, type: TYPES[ext] ?? "application/octet-stream", etag, immutable, compressible: COMPRESSIBLE.has(ext) };
}

/** Every file under `root`, by its path relative to it (`assets/index-3f2a.js`). */
function readFiles(root: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(root)) return files;
  for (const entry of readdirSync(root, { recursive: true, encoding: "utf8" })) {
    const path = entry.split("\\").join("/");
    const full = join(root, entry);
    if (!statSync(full).isFile()) continue;
    files.set(path, file(readFileSync(full), extname(path), path.startsWith("assets/")));
  }
  return files;
}

function notBuilt(conveyor: Conveyor, prefix: string): StaticFile {
  const link = (path: string) => `<a href="${escapeHtml(prefix)}${path}">${path}</a>`;
  return file(
    Buffer.from(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conveyor · ${escapeHtml(conveyor.nodeName)}</title>
</head><body>
<h1>Conveyor</h1>
<p>Node <b>${escapeHtml(conveyor.nodeName)}</b> (${escapeHtml(conveyor.nodeId)}), version ${escapeHtml(conveyor.options.version)}.</p>
<p>The dashboard is not built in this checkout: run <code>npm run build:dashboard</code> (or <code>npm install</code>) and restart the node.
Meanwhile: ${["/api/tasks", "/api/queues", "/api/nodes", "/api/schedules", "/api/health", "/metrics", "/api/openapi.json"].map(link).join(" · ")}</p>
</body></html>`),
    ".html",
    false,
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
