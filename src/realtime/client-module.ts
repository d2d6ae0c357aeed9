/**
 * The browser client (client.ts) as JavaScript, for `GET /api/live/client.js`: a page imports it from any node
 * without a bundler. An installed Conveyor runs dist/, where client.js sits beside this module, already compiled;
 * a checkout runs the TypeScript sources, and client.ts is served with its types stripped (Node's own stripper:
 * the file is erasable syntax only, and depends on nothing). Read once, on first request, and kept in memory.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { stripTypeScriptTypes } from "node:module";

export type ClientModule = { text: string; etag: string };

let cached: Promise<ClientModule> | null = null;

export function clientModule(): Promise<ClientModule> {
  cached ??= load().catch((error: unknown) => {
    cached = null;
    throw error;
  });
  return cached;
}

async function load(): Promise<ClientModule> {
  const source = import.meta.url.endsWith(".ts");
  const url = new URL(source ? "./client.ts" : "./client.js", import.meta.url);
  const file = await readFile(url, "utf8");
  const text = source ? stripTypeScriptTypes(file, { mode: "strip" }) : file;
  const etag = `"${createHash("sha256").update(text).digest("base64url").slice(0, 27)}"`;
  return { text, etag };
}
