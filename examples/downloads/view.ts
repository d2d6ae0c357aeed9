/**
 * The page's pieces: the download card and the cluster list. The server renders them into the page it sends (so
 * GET / already shows "Download PDF" or the card), and the browser re-renders them on every push with the very same
 * functions: their source, with Node's type stripping already applied, is written into the page's script. So they
 * must stay self-contained: no imports, no helpers outside this list, only their arguments.
 */
import type { Download } from "./download.ts";
import type { ClusterNode } from "./jobs.ts";

export function escapeHtml(text: string): string {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

/** The download's card (or the "Download PDF" call to action when there is none); `percent` is within processing. */
export function cardHtml(download: Download | null, percent: number): string {
  const icons = {
    spinner:
      '<svg class="icon spin" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2.5" opacity=".2"/><path d="M21 12a9 9 0 0 0-9-9" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round"/></svg>',
    check:
      '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="10" fill="currentColor" opacity=".15"/><path d="m7.5 12.5 3 3 6-7" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"/></svg>',
    cross:
      '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="10" fill="currentColor" opacity=".15"/><path d="m8.5 8.5 7 7m0-7-7 7" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round"/></svg>',
    file: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M7 3h7l5 5v12a1 1 0 0 1-1 1H7a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1Z" fill="currentColor" opacity=".15"/><path d="M14 3v5h5M9 13h6M9 17h4" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
  };
  if (download === null) {
    return `<div class="card empty" data-state="none">
  <div class="card-icon">${icons.file}</div>
  <div class="card-body">
    <h2>Monthly report (PDF)</h2>
    <p class="muted">Generating it takes a few seconds. Refresh, open it on another node, or stop the node doing the work: it gets done anyway.</p>
    <div class="actions"><button type="button" class="primary" data-action="request">Download PDF</button></div>
  </div>
</div>`;
  }
  const texts = {
    pending: ["Generating downloadable file", "Starting download request"],
    processing: ["Generating downloadable file", "Generating file..."],
    ready: ["Generating downloadable file", "File generated with success"],
    error: ["Generating downloadable file", "The file could not be generated"],
  } as const;
  const [title, text] = texts[download.state];
  const steps = ["pending", "processing", "ready"];
  const at = download.state === "error" ? -1 : steps.indexOf(download.state);
  const stepper = ["Requested", "Generating", "Ready"]
    .map(
      (label, i) =>
        `<li class="${i < at || download.state === "ready" ? "done" : i === at ? "now" : ""}">${label}</li>`,
    )
    .join("");
  const width = download.state === "ready" ? 100 : download.state === "processing" ? Math.max(4, percent) : 0;
  const bar =
    download.state === "error"
      ? ""
      : `<div class="bar${download.state === "pending" ? " waiting" : ""}" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${download.state === "pending" ? 0 : width}"><span style="width:${width}%"></span></div>`;
  const icon = download.state === "ready" ? icons.check : download.state === "error" ? icons.cross : icons.spinner;
  const actions =
    download.state === "ready"
      ? `<a class="primary" href="${escapeHtml(download.file_url ?? "#")}" download="${escapeHtml(download.id)}.pdf" data-action="download">Click me to download the file</a><button type="button" class="ghost" data-action="delete">Dismiss</button>`
      : download.state === "error"
        ? `<button type="button" class="primary" data-action="request">Try again</button><button type="button" class="ghost" data-action="delete">Dismiss</button>`
        : `<button type="button" class="ghost" data-action="delete">Cancel</button>`;
  return `<div class="card" data-state="${download.state}" data-id="${escapeHtml(download.id)}">
  <div class="card-icon">${icon}</div>
  <div class="card-body">
    <h2>${title}</h2>
    <p class="status-text">${text}${download.state === "processing" ? ` <span class="pct">${percent}%</span>` : ""}</p>
    <ol class="steps">${stepper}</ol>
    ${bar}
    <dl class="facts"><div><dt>Download</dt><dd><code>${escapeHtml(download.id)}</code></dd></div><div><dt>Node</dt><dd>${escapeHtml(download.node ?? "waiting for a node")}</dd></div></dl>
    <div class="actions">${actions}</div>
  </div>
</div>`;
}

/** The cluster's nodes as Conveyor sees them; `self` is the name of the node that served the page. */
export function nodesHtml(nodes: ClusterNode[], self: string): string {
  if (nodes.length === 0) return '<li class="node"><span class="muted">No node yet</span></li>';
  return nodes
    .map(
      (node) => `<li class="node${node.alive ? "" : " down"}${node.name === self ? " self" : ""}">
  <span class="dot" title="${node.alive ? "alive" : "not answering"}"></span>
  <span class="node-name">${escapeHtml(node.name)}</span>
  ${node.leader ? '<span class="badge leader">leader</span>' : ""}${node.name === self ? '<span class="badge">this page</span>' : ""}
  <span class="version">v${escapeHtml(node.version)}</span>
</li>`,
    )
    .join("");
}

/** The functions above as the browser's script gets them (see the file's comment). */
export const SHARED_VIEW_SOURCE = [escapeHtml, cardHtml, nodesHtml].map((fn) => String(fn)).join("\n\n");
