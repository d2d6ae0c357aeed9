/**
 * The frame around every view: navigation (a sidebar on wide screens, a bar on phones), the stream's state, the
 * session (read-only, sign in), the "new version deployed" banner, keyboard shortcuts and their help.
 */
import { Link, Outlet, useNavigate, useRouterState } from "@tanstack/react-router";
import { type ReactNode, useEffect, useState } from "react";
import { useAuth } from "./auth.tsx";
import { major, useCluster, useClusterLive, useThisNode } from "./data.ts";
import { PAGE_VERSION } from "./env.ts";
import { type LiveState, useLiveState } from "./live.tsx";
import { Dialog, Toasts } from "./ui/kit.tsx";

type NavItem = { to: string; label: string; key: string; icon: ReactNode; disabled?: boolean };

const icon = (d: string) => (
  <svg
    viewBox="0 0 24 24"
    width="18"
    height="18"
    aria-hidden="true"
    fill="none"
    stroke="currentColor"
    strokeWidth="1.8"
  >
    <path d={d} strokeLinecap="round" strokeLinejoin="round" />
  </svg>
);

const NAV: NavItem[] = [
  { to: "/", label: "Overview", key: "o", icon: icon("M4 19V9m6 10V5m6 14v-7m4 7H3") },
  { to: "/tasks", label: "Tasks", key: "t", icon: icon("M8 6h12M8 12h12M8 18h12M4 6h.01M4 12h.01M4 18h.01") },
  { to: "/queues", label: "Queues", key: "q", icon: icon("M4 7h16M4 12h16M4 17h10") },
  { to: "/schedules", label: "Schedules", key: "s", icon: icon("M12 7v5l3 2M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0Z") },
  {
    to: "/nodes",
    label: "Nodes",
    key: "n",
    icon: icon("M5 5h14v5H5zM5 14h14v5H5zM8 7.5h.01M8 16.5h.01"),
  },
  { to: "/dispatch", label: "Dispatch", key: "d", icon: icon("M4 12h11m0 0-4-4m4 4-4 4M20 5v14") },
];

const STATE_LABEL: Record<LiveState, string> = {
  live: "Live",
  connecting: "Connecting",
  recovering: "Reconnecting",
  offline: "Offline",
};

export function Shell() {
  useClusterLive();
  const auth = useAuth();
  const live = useLiveState();
  const node = useThisNode();
  const [help, setHelp] = useState(false);
  useShortcuts(() => setHelp(true));
  const path = useRouterState({ select: (s) => s.location.pathname });
  useEffect(() => {
    const item = NAV.find((n) => (n.to === "/" ? path === "/" : path.startsWith(n.to)));
    document.title = `${item?.label ?? "Conveyor"} · Conveyor${node.data ? ` · ${node.data.name}` : ""}`;
  }, [path, node.data]);
  // On a phone the nav is a bar that scrolls sideways: the current page's entry is brought into view.
  useEffect(() => {
    void path;
    document
      .querySelector(".sidebar nav [aria-current='page']")
      ?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }, [path]);

  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <Link to="/" className="brand" aria-label="Conveyor overview">
          <span className="logo" aria-hidden="true" />
          <span>Conveyor</span>
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                {item.disabled ? (
                  <span className="nav-link disabled" aria-disabled="true" title="Coming with dispatch">
                    {item.icon}
                    <span>{item.label}</span>
                    <span className="soon">soon</span>
                  </span>
                ) : (
                  <Link
                    to={item.to}
                    className="nav-link"
                    activeProps={{ className: "nav-link active", "aria-current": "page" }}
                    activeOptions={{ exact: item.to === "/" }}
                  >
                    {item.icon}
                    <span>{item.label}</span>
                  </Link>
                )}
              </li>
            ))}
          </ul>
        </nav>
        <div className="sidebar-foot">
          <span className={`live-dot live-${live}`} role="status" aria-label={`Stream: ${STATE_LABEL[live]}`}>
            <span aria-hidden="true" />
            {STATE_LABEL[live]}
          </span>
          {node.data ? (
            <span className="muted small node-name" title={`${node.data.id} · ${node.data.driver}`}>
              {node.data.name}
            </span>
          ) : null}
          <span className="session">
            {auth.whoami?.tokens.write || auth.whoami?.tokens.read ? (
              auth.canWrite ? (
                <button type="button" className="link small" onClick={auth.signOut}>
                  Sign out
                </button>
              ) : (
                <>
                  <span className="badge tone-warn" title="Write actions are hidden">
                    read-only
                  </span>
                  <button type="button" className="link small" onClick={auth.signIn}>
                    Sign in
                  </button>
                </>
              )
            ) : null}
          </span>
          <button type="button" className="link small help-link" onClick={() => setHelp(true)} aria-keyshortcuts="?">
            Shortcuts <kbd>?</kbd>
          </button>
        </div>
      </aside>
      <div className="content">
        <VersionBanner />
        <main id="main" className="main">
          <Outlet />
        </main>
      </div>
      <HelpDialog open={help} onClose={() => setHelp(false)} />
      <Toasts />
    </div>
  );
}

/**
 * "A new version is deployed": every live node runs a version whose major differs from this page's. (The seed
 * showed it when the versions were equal; a page is stale when they differ.)
 */
function VersionBanner() {
  const cluster = useCluster();
  const alive = cluster.data?.nodes.filter((n) => n.alive) ?? [];
  const pageMajor = major(PAGE_VERSION);
  if (alive.length === 0 || !alive.every((n) => major(n.version) !== pageMajor)) return null;
  const versions = [...new Set(alive.map((n) => n.version))].join(", ");
  return (
    <div className="banner" role="alert">
      <span>
        A new version of Conveyor is deployed ({versions}; this page is {PAGE_VERSION}).
      </span>
      <button type="button" className="btn btn-primary btn-small" onClick={() => location.reload()}>
        Reload
      </button>
    </div>
  );
}

const SHORTCUTS: [string, string][] = [
  ["/", "Search: find a task by id, or filter"],
  ["?", "This help"],
  ["g o", "Overview"],
  ["g t", "Tasks"],
  ["g q", "Queues"],
  ["g s", "Schedules"],
  ["g n", "Nodes"],
  ["g d", "Dispatch"],
  ["j / k", "Next / previous row (tasks)"],
  ["Enter", "Open the row (tasks)"],
  ["x", "Select the row (tasks)"],
  ["Esc", "Close a dialog, leave a field"],
];

function HelpDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog open={open} onClose={onClose} title="Keyboard shortcuts">
      <dl className="shortcuts">
        {SHORTCUTS.map(([keys, what]) => (
          <div key={keys}>
            <dt>
              {keys.split(" ").map((k) => (
                <kbd key={k}>{k}</kbd>
              ))}
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
    </Dialog>
  );
}

function typing(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (element === null) return false;
  return element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName);
}

function useShortcuts(openHelp: () => void): void {
  const navigate = useNavigate();
  useEffect(() => {
    let pendingG = 0;
    const onKey = (event: KeyboardEvent) => {
      if (event.metaKey || event.ctrlKey || event.altKey || typing(event.target)) return;
      if (document.querySelector("dialog[open]") !== null) return;
      if (event.key === "?") {
        event.preventDefault();
        openHelp();
      } else if (event.key === "/") {
        event.preventDefault();
        const search = document.querySelector<HTMLInputElement>("[data-search]");
        if (search !== null) search.focus();
        else void navigate({ to: "/tasks", search: { focus: "1" } });
      } else if (event.key === "g") {
        pendingG = Date.now();
      } else if (Date.now() - pendingG < 1000) {
        const item = NAV.find((n) => n.key === event.key && !n.disabled);
        pendingG = 0;
        if (item !== undefined) void navigate({ to: item.to });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [navigate, openHelp]);
}
