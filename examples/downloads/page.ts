/**
 * The page at GET /: the seed's LiveView page, as plain HTML and a module script. It is rendered with the user's
 * download and the cluster as the server read them, and the log position that read is consistent with; the script
 * then follows the user's channel and the cluster's from exactly there over Conveyor's live stream (the browser
 * client served at /api/live/client.js, a subscription token minted for this user only), so no push is missed and none
 * comes twice, whichever node serves the page, whichever node runs the job. When its connection drops it reconnects
 * (to any node behind the same address) and resumes from its last offset; if the gap cannot be replayed it reloads
 * the state over HTTP.
 */
import type { Download, LogPosition } from "./download.ts";
import type { ClusterNode } from "./jobs.ts";
import { cardHtml, escapeHtml, nodesHtml, SHARED_VIEW_SOURCE } from "./view.ts";

export type PageModel = {
  download: Download | null;
  percent: number;
  nodes: ClusterNode[];
  node: string;
  version: string;
  userId: string;
  token: string;
  since: LogPosition;
  channels: string[];
};

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

const FAVICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%234f46e5'/%3E%3Cpath d='M16 8v12m-5-5 5 5 5-5M10 24h12' fill='none' stroke='white' stroke-width='2.5' stroke-linecap='round' stroke-linejoin='round'/%3E%3C/svg%3E";

export function renderPage(model: PageModel, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Download manager · Conveyor</title>
<link rel="icon" href="${FAVICON}">
<style>${STYLE}</style>
</head>
<body>
<header class="top">
  <div class="top-inner">
  <div class="brand">
    <span class="logo" aria-hidden="true"><svg viewBox="0 0 24 24"><path d="M12 4v11m-4.5-4.5L12 15l4.5-4.5M6 19h12" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg></span>
    <span>Download manager <span class="muted">on Conveyor</span></span>
  </div>
  <div class="live" id="live" data-state="connecting"><span class="dot"></span><span id="live-text">Connecting…</span></div>
  </div>
</header>
<div class="notice" id="notice" role="alert" hidden>
  <div><strong>New application version available, please refresh</strong><span class="muted" id="notice-text"></span></div>
  <button type="button" class="primary" data-action="refresh">Refresh</button>
</div>
<main>
  <section class="panel main-panel" aria-live="polite">
    <div id="download">${cardHtml(model.download, model.percent)}</div>
    <p class="flash" id="flash" role="status" hidden></p>
    <ul class="features">
      <li><strong>One at a time</strong><span class="muted">One download per user on every node, even for requests made at the same instant.</span></li>
      <li><strong>Pushed live</strong><span class="muted">Each step reaches this page over Conveyor's live stream, from whichever node does the work.</span></li>
      <li><strong>Survives a crash</strong><span class="muted">Kill the node running it: another one resumes it from its last step, same id.</span></li>
    </ul>
  </section>
  <aside class="panel side-panel">
    <h3>Cluster</h3>
    <ul class="nodes" id="nodes">${nodesHtml(model.nodes, model.node)}</ul>
    <dl class="meta">
      <div><dt>Served by</dt><dd>${escapeHtml(model.node)}</dd></div>
      <div><dt>Version</dt><dd>${escapeHtml(model.version)}</dd></div>
      <div><dt>You</dt><dd><code>${escapeHtml(model.userId)}</code></dd></div>
    </dl>
  </aside>
</main>
<footer class="foot muted">Pending, processing and ready are pushed by whichever node runs the job; kill it and another takes over.</footer>
<script type="application/json" id="boot">${scriptJson(model)}</script>
<script type="module" nonce="${nonce}">
${SHARED_VIEW_SOURCE}

${CLIENT}
</script>
</body>
</html>
`;
}

/** The page's behaviour (plain browser JavaScript). */
const CLIENT = `
const boot = JSON.parse(document.getElementById("boot").textContent);
const $ = (id) => document.getElementById(id);
const RANK = { pending: 0, processing: 1, ready: 2, error: 3 };
const removed = new Set();
let download = boot.download;
let percent = boot.percent;
let nodes = boot.nodes;
let flashTimer = null;

const page = (window.downloadsPage = { events: [], states: [], boot });

function render() {
  $("download").innerHTML = cardHtml(download, percent);
}
function renderNodes() {
  $("nodes").innerHTML = nodesHtml(nodes, boot.node);
}
function flash(text, kind = "error") {
  const el = $("flash");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (el.hidden = true), 5000);
}
/** Takes a download as the server or a push says it is; never goes back within one download. */
function show(next) {
  if (next === null) {
    download = null;
  } else if (removed.has(next.id)) {
    return;
  } else if (download !== null && download.id === next.id && RANK[next.state] < RANK[download.state]) {
    return;
  } else {
    if (download === null || download.id !== next.id || download.state !== next.state) {
      percent = next.state === "ready" ? 100 : 0;
    }
    download = next;
  }
  render();
}

function onEvent(event) {
  page.events.push({ offset: event.offset, data: event.data });
  const message = event.data;
  if (event.name !== "message" || message === null || typeof message !== "object") return;
  switch (message.type) {
    case "update":
      show(message.download);
      break;
    case "progress":
      if (download !== null && download.id === message.id && !removed.has(message.id)) {
        if (download.state === "processing") percent = Math.max(percent, message.percent);
        download = { ...download, node: message.node };
        render();
      }
      break;
    case "removed":
      removed.add(message.id);
      if (download !== null && download.id === message.id) show(null);
      break;
    case "cluster":
      nodes = message.nodes;
      renderNodes();
      break;
    case "new_version":
      // Only a page whose own version differs (the seed's popup showed when they were equal).
      if (message.version !== boot.version) {
        $("notice-text").textContent = " This page runs " + boot.version + "; the cluster now runs " + message.version + ".";
        $("notice").hidden = false;
      }
      break;
  }
}

/** The gap could not be replayed (another log, or too far behind): read the state again. */
async function reload() {
  const [d, c] = await Promise.all([fetch("/download"), fetch("/cluster")]);
  if (d.status === 200) show(await d.json());
  else if (d.status === 404) show(null);
  if (c.ok) {
    nodes = (await c.json()).nodes;
    renderNodes();
  }
}

async function request() {
  const response = await fetch("/download", { method: "POST" });
  const body = await response.json().catch(() => null);
  if (response.status === 201) show(body);
  else if (response.status === 409 && body && body.error && body.error.download) {
    show(body.error.download);
    flash("You already have a download: one at a time.", "info");
  } else flash((body && body.error && body.error.message) || "Error creating download request");
}

async function remove() {
  const id = download && download.id;
  const response = await fetch("/download", { method: "DELETE" });
  if (response.status === 204) {
    if (id) removed.add(id);
    show(null);
  } else flash("Could not delete the download");
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  if (!target) return;
  const action = target.dataset.action;
  if (action === "request") request().catch(() => flash("Error creating download request"));
  else if (action === "delete") remove().catch(() => flash("Could not delete the download"));
  else if (action === "refresh") location.reload();
});

const LIVE_TEXT = { connecting: "Connecting…", live: "Live", recovering: "Reconnecting…", offline: "Offline, retrying…" };
const { LiveClient } = await import("/api/live/client.js");
const live = new LiveClient({
  url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/live",
  minDelayMs: 250,
  maxDelayMs: 5000,
});
live.onState((state) => {
  page.states.push(state);
  $("live").dataset.state = state;
  $("live-text").textContent = LIVE_TEXT[state] || state;
});
page.subscription = live.subscribe(boot.channels, onEvent, {
  since: boot.since,
  token: boot.token,
  onReload: () => reload().catch(() => {}),
  // A token past its lifetime: a fresh page gets a fresh one.
  onError: (error) => (error.code === "token_expired" ? location.reload() : flash("Live updates refused: " + error.message)),
});
page.ready = true;
`;

const STYLE = `
:root {
  --bg: #f4f5fb; --panel: #ffffff; --text: #161a2b; --muted: #667085; --line: #e4e7ef;
  --accent: #4f46e5; --accent-2: #7c3aed; --accent-text: #ffffff; --accent-soft: #eef0ff;
  --ok: #12915a; --ok-soft: #e6f6ee; --warn: #b7791f; --bad: #d92d20; --bad-soft: #fdecea;
  --shadow: 0 1px 2px rgba(16, 24, 40, .05), 0 8px 24px rgba(16, 24, 40, .08);
  font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--text); background: var(--bg);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1020; --panel: #161a2e; --text: #e8eaf6; --muted: #98a0bd; --line: #272c46;
    --accent: #818cf8; --accent-2: #a78bfa; --accent-text: #0d1020; --accent-soft: #1f2444;
    --ok: #4ade80; --ok-soft: #143024; --warn: #fbbf24; --bad: #f87171; --bad-soft: #3a1a1f;
    --shadow: 0 1px 2px rgba(0, 0, 0, .4), 0 8px 24px rgba(0, 0, 0, .35);
  }
}
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; flex-direction: column; line-height: 1.5; }
.muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.top { background: var(--panel); border-bottom: 1px solid var(--line); }
.top-inner { display: flex; align-items: center; justify-content: space-between; gap: 12px; padding: 14px 0;
  width: min(1040px, calc(100% - 40px)); margin: 0 auto; }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; font-size: 1.02rem; }
.brand .muted { font-weight: 500; }
.logo { width: 32px; height: 32px; border-radius: 9px; display: grid; place-items: center; color: #fff;
  background: linear-gradient(135deg, #4f46e5, #7c3aed); }
.logo svg { width: 20px; height: 20px; }
.live { display: inline-flex; align-items: center; gap: 8px; font-size: .85rem; color: var(--muted);
  padding: 4px 12px; border: 1px solid var(--line); border-radius: 999px; white-space: nowrap; }
.live .dot, .node .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--warn); flex: none; }
.live[data-state="live"] .dot { background: var(--ok); box-shadow: 0 0 0 3px var(--ok-soft); }
.live[data-state="offline"] .dot { background: var(--bad); }
.notice { display: flex; align-items: center; justify-content: space-between; gap: 16px; margin: 20px auto 0;
  width: min(1040px, calc(100% - 40px)); padding: 14px 18px; border-radius: 12px; background: var(--accent-soft);
  border: 1px solid var(--accent); }
.notice[hidden] { display: none; }
.notice strong { display: block; }
main { width: min(1040px, calc(100% - 40px)); margin: 28px auto; display: grid; gap: 24px;
  grid-template-columns: minmax(0, 1fr) 320px; align-items: start; flex: 1; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 16px; box-shadow: var(--shadow); }
.main-panel { padding: 28px; }
.side-panel { padding: 20px; }
.side-panel h3 { margin: 0 0 12px; font-size: .8rem; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); }
.card { display: flex; gap: 18px; align-items: flex-start; }
.card-icon { width: 48px; height: 48px; flex: none; border-radius: 12px; display: grid; place-items: center;
  background: var(--accent-soft); color: var(--accent); }
.card[data-state="ready"] .card-icon { background: var(--ok-soft); color: var(--ok); }
.card[data-state="error"] .card-icon { background: var(--bad-soft); color: var(--bad); }
.icon { width: 28px; height: 28px; }
.spin { animation: spin 1s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
.card-body { flex: 1; min-width: 0; }
.card h2 { margin: 2px 0 4px; font-size: 1.25rem; line-height: 1.3; }
.card p { margin: 0 0 14px; }
.status-text { font-weight: 550; }
.card[data-state="ready"] .status-text { color: var(--ok); }
.card[data-state="error"] .status-text { color: var(--bad); }
.pct { color: var(--muted); font-variant-numeric: tabular-nums; font-weight: 500; }
.steps { display: flex; gap: 6px; list-style: none; padding: 0; margin: 0 0 12px; font-size: .78rem; color: var(--muted); }
.steps li { flex: 1; padding-top: 8px; border-top: 3px solid var(--line); }
.steps li.done { border-color: var(--accent); color: var(--text); }
.steps li.now { border-color: var(--accent-2); color: var(--text); font-weight: 600; }
.bar { height: 8px; border-radius: 999px; background: var(--line); overflow: hidden; margin-bottom: 16px; }
.bar span { display: block; height: 100%; border-radius: inherit; transition: width .4s ease;
  background: linear-gradient(90deg, var(--accent), var(--accent-2)); }
.card[data-state="ready"] .bar span { background: var(--ok); }
.bar.waiting span { width: 30% !important; animation: slide 1.2s ease-in-out infinite; }
@keyframes slide { from { transform: translateX(-100%); } to { transform: translateX(340%); } }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0 0 18px; font-size: .88rem; }
.facts dt, .meta dt { color: var(--muted); font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; }
.facts dd, .meta dd { margin: 0; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: 10px; }
button, a.primary { font: inherit; font-size: .92rem; font-weight: 600; border-radius: 10px; padding: 9px 18px;
  cursor: pointer; text-decoration: none; display: inline-flex; align-items: center; border: 1px solid transparent; }
.primary { background: var(--accent); color: var(--accent-text); }
.primary:hover { filter: brightness(1.08); }
.ghost { background: transparent; color: var(--text); border-color: var(--line); }
.ghost:hover { background: var(--accent-soft); }
button:focus-visible, a:focus-visible { outline: 3px solid var(--accent-2); outline-offset: 2px; }
.flash { margin: 18px 0 0; padding: 10px 14px; border-radius: 10px; background: var(--bad-soft); color: var(--bad); font-size: .9rem; }
.flash[data-kind="info"] { background: var(--accent-soft); color: var(--accent); }
.flash[hidden] { display: none; }
.nodes { list-style: none; padding: 0; margin: 0 0 16px; display: grid; grid-template-columns: minmax(0, 1fr); gap: 8px; }
.node { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; min-width: 0; padding: 9px 12px; border: 1px solid var(--line); border-radius: 10px; font-size: .9rem; }
.node .dot { background: var(--ok); }
.node.down { opacity: .55; }
.node.down .dot { background: var(--bad); }
.node.down .node-name { text-decoration: line-through; }
.node.self { border-color: var(--accent); }
.node-name { font-weight: 600; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { font-size: .7rem; font-weight: 600; padding: 1px 7px; border-radius: 999px; background: var(--accent-soft); color: var(--accent); white-space: nowrap; }
.badge.leader { background: var(--ok-soft); color: var(--ok); }
.version { margin-left: auto; color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }
.meta { display: grid; gap: 8px; margin: 0; padding-top: 14px; border-top: 1px solid var(--line); font-size: .88rem; }
.features { list-style: none; margin: 26px 0 0; padding: 22px 0 0; border-top: 1px solid var(--line);
  display: grid; grid-template-columns: repeat(3, 1fr); gap: 18px; font-size: .85rem; }
.features li { display: grid; gap: 4px; align-content: start; }
.features strong { font-size: .9rem; }
.foot { text-align: center; font-size: .8rem; padding: 0 20px 24px; }
@media (max-width: 760px) {
  .top-inner { width: calc(100% - 24px); padding: 12px 0; }
  .brand .muted { display: none; }
  main { grid-template-columns: 1fr; margin: 16px auto; width: calc(100% - 24px); gap: 16px; }
  .notice { width: calc(100% - 24px); margin-top: 12px; flex-direction: column; align-items: stretch; }
  .main-panel { padding: 20px 18px; }
  .card { gap: 14px; }
  .card-icon { width: 40px; height: 40px; border-radius: 10px; }
  .icon { width: 24px; height: 24px; }
  .card h2 { font-size: 1.1rem; }
  .actions { flex-direction: column; }
  .actions > * { justify-content: center; }
  .features { grid-template-columns: 1fr; gap: 12px; margin-top: 20px; padding-top: 18px; }
}
`;
