/**
 * Where the dashboard is: the node puts `<base href="<prefix>/">` in the page (src/http/routes/home.ts), so the
 * API, the live stream and the router's base all follow the prefix it is mounted at.
 */
declare const __CONVEYOR_VERSION__: string;

/** The version this page was built from (the package's). */
export const PAGE_VERSION: string = typeof __CONVEYOR_VERSION__ === "string" ? __CONVEYOR_VERSION__ : "0.0.0";

const base = new URL(document.baseURI);
/** `/` or `/conveyor/`: always with a trailing slash. */
export const BASE_PATH = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;

export function apiUrl(path: string): string {
  return `${BASE_PATH}api/${path.replace(/^\//, "")}`;
}

export function liveUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${BASE_PATH}api/live`;
}
