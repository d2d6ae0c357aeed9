/**
 * GET / (contract A.5): the seed's layout, a title and a header, and the React mount point react_phoenix rendered,
 * `<div data-react-class="Components.Todo" data-react-props="{items, mode}">` (HTML-escaped JSON). Props carry one
 * more key, `position`: the log position the items go with, so that the page follows the changes from exactly
 * there (null from an original engine). The script is the React component in page/, bundled with React and the
 * Phoenix client by Vite's build API on the first request and kept in memory (about 0.3 s, once per process).
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Position } from "./engine.ts";
import type { Item } from "./todo.ts";

const ENTRY = fileURLToPath(new URL("./page/main.js", import.meta.url));
export const SCRIPT_PATH = "/assets/todo.js";

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

export function renderPage(props: { items: Item[]; mode: string; position: Position | null }): string {
  const json = JSON.stringify({ items: props.items, mode: props.mode, position: props.position });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>ZTD · Todo</title>
<style>${STYLE}</style>
</head>
<body>
<main class="shell">
<header class="masthead"><h1>ZTD</h1><p>A real-time todo list over RabbitMQ</p></header>
<div data-react-class="Components.Todo" data-react-props="${escapeHtml(json)}"></div>
</main>
<script type="module" src="${SCRIPT_PATH}"></script>
</body>
</html>
`;
}

export function renderError(status: number, title: string, detail: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main class="shell"><header class="masthead"><h1>${escapeHtml(title)}</h1></header>
<p class="error-detail">${escapeHtml(detail)}</p><p class="error-status">${status}</p></main></body>
</html>
`;
}

export type Script = { code: string; etag: string };

let bundle: Promise<Script> | null = null;

/** The page's script, built once per process. */
export function pageScript(): Promise<Script> {
  bundle ??= build().catch((error: unknown) => {
    bundle = null;
    throw error;
  });
  return bundle;
}

async function build(): Promise<Script> {
  const { build: viteBuild } = await import("vite");
  // Vite's build sets NODE_ENV for the whole process: keep this server's.
  const nodeEnv = process.env.NODE_ENV;
  try {
    const result = await viteBuild({
      configFile: false,
      root: fileURLToPath(new URL("./page/", import.meta.url)),
      logLevel: "silent",
      mode: "production",
      define: { "process.env.NODE_ENV": JSON.stringify("production") },
      build: {
        write: false,
        minify: true,
        target: "es2022",
        rollupOptions: { input: ENTRY, output: { format: "es", entryFileNames: "todo.js" } },
      },
    });
    const output = (Array.isArray(result) ? result[0] : result) as { output: { type: string; code?: string }[] };
    const chunk = output.output.find((file) => file.type === "chunk");
    if (chunk?.code === undefined) throw new Error("the page's build produced no script");
    return { code: chunk.code, etag: `"${createHash("sha256").update(chunk.code).digest("base64url").slice(0, 22)}"` };
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}

const STYLE = `
:root {
  --bg: #f6f7f9; --card: #ffffff; --text: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #2f6fde; --accent-text: #ffffff; --done: #98a2b3; --ok: #1f9d55; --warn: #b7791f; --danger: #c53030;
  --focus: rgba(47, 111, 222, 0.35); --shadow: 0 1px 2px rgba(16, 24, 40, 0.06), 0 4px 16px rgba(16, 24, 40, 0.06);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12151b; --card: #1b2029; --text: #e6e9ef; --muted: #98a2b3; --line: #2b3240;
    --accent: #5b8def; --accent-text: #0d1117; --done: #667085; --ok: #48bb78; --warn: #ecc94b; --danger: #fc8181;
    --focus: rgba(91, 141, 239, 0.4); --shadow: 0 1px 2px rgba(0, 0, 0, 0.3), 0 4px 16px rgba(0, 0, 0, 0.25);
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--text); }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.shell { max-width: 600px; margin: 0 auto; padding: 40px 20px 64px; }
.masthead h1 { margin: 0; font-size: 28px; letter-spacing: 0.04em; }
.masthead p { margin: 2px 0 24px; color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; box-shadow: var(--shadow); }
.bar { display: flex; align-items: center; justify-content: space-between; gap: 12px; padding: 12px 16px;
  border-bottom: 1px solid var(--line); font-size: 14px; color: var(--muted); }
.mode { font-weight: 600; color: var(--text); text-transform: capitalize; }
.status { display: inline-flex; align-items: center; gap: 6px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--warn); }
.status[data-state="live"] .dot { background: var(--ok); }
.status[data-state="offline"] .dot { background: var(--danger); }
form.add { display: flex; gap: 8px; padding: 16px; border-bottom: 1px solid var(--line); }
input, button { font: inherit; color: inherit; }
input[type="text"] { flex: 1; min-width: 0; padding: 10px 12px; border: 1px solid var(--line); border-radius: 8px;
  background: transparent; }
input[type="text"]:focus, button:focus-visible, input[type="checkbox"]:focus-visible { outline: 3px solid var(--focus);
  outline-offset: 1px; border-color: var(--accent); }
button.primary { padding: 10px 18px; border: 0; border-radius: 8px; background: var(--accent); color: var(--accent-text);
  font-weight: 600; cursor: pointer; }
button.primary:disabled { opacity: 0.5; cursor: default; }
ul.items { list-style: none; margin: 0; padding: 0; }
li.item { display: flex; align-items: center; gap: 12px; padding: 10px 16px; border-bottom: 1px solid var(--line); }
li.item:last-child { border-bottom: 0; }
li.item input[type="checkbox"] { width: 20px; height: 20px; accent-color: var(--accent); flex: none; cursor: pointer; }
.title { flex: 1; min-width: 0; overflow-wrap: anywhere; cursor: text; padding: 2px 0; border: 0; background: none;
  text-align: left; }
li.item[data-done="true"] .title { color: var(--done); text-decoration: line-through; }
li.item[data-pending="true"] { opacity: 0.6; }
li.item input.edit { padding: 4px 8px; }
button.delete { flex: none; width: 32px; height: 32px; border: 0; border-radius: 8px; background: none;
  color: var(--muted); font-size: 20px; line-height: 1; cursor: pointer; }
button.delete:hover { background: var(--bg); color: var(--danger); }
.empty { padding: 28px 16px; text-align: center; color: var(--muted); }
.foot { padding: 10px 16px; font-size: 14px; color: var(--muted); border-top: 1px solid var(--line); }
.notice { margin: 12px 0 0; padding: 10px 14px; border-radius: 8px; font-size: 14px; border: 1px solid var(--line);
  background: var(--card); color: var(--danger); }
.error-detail { color: var(--muted); }
.error-status { color: var(--muted); font-size: 14px; }
@media (max-width: 480px) {
  .shell { padding: 24px 12px 48px; }
  form.add { padding: 12px; }
  li.item { padding: 10px 12px; }
}
`;
