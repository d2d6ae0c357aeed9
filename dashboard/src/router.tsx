/**
 * Every view has a URL (filters and selections included), so any of them can be bookmarked, shared or reloaded.
 * Search parameters are plain (`?state=running,failed&queue=mail`), not JSON.
 */
import { createRootRoute, createRoute, createRouter, lazyRouteComponent } from "@tanstack/react-router";
import { BASE_PATH } from "./env.ts";
import { NotFound } from "./pages/NotFound.tsx";
import { Nodes } from "./pages/Nodes.tsx";
import { Queues } from "./pages/Queues.tsx";
import { TaskDetail } from "./pages/TaskDetail.tsx";
import { Tasks } from "./pages/Tasks.tsx";
import type {
  DeliverySearch,
  DispatchMessageSearch,
  DispatchSearch,
  PublisherSearch,
  ScheduleSearch,
  TaskSearch,
} from "./search.ts";
import { Shell } from "./shell.tsx";

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : typeof value === "number" ? String(value) : undefined;

function pick<T extends string>(search: Record<string, unknown>, names: readonly T[]): Partial<Record<T, string>> {
  const out: Partial<Record<T, string>> = {};
  for (const name of names) {
    const value = text(search[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

const rootRoute = createRootRoute({ component: Shell, notFoundComponent: NotFound });

// The two pages with a library of their own load it when they are first shown: uPlot (charts), croner (cron).
const overviewRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/",
  component: lazyRouteComponent(() => import("./pages/Overview.tsx"), "Overview"),
});

const tasksRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "tasks",
  validateSearch: (search: Record<string, unknown>): TaskSearch =>
    pick(search, ["state", "queue", "type", "key", "from", "to", "focus"] as const),
  component: Tasks,
});

const taskRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "tasks/$id",
  component: TaskDetail,
});

const queuesRoute = createRoute({ getParentRoute: () => rootRoute, path: "queues", component: Queues });
const nodesRoute = createRoute({ getParentRoute: () => rootRoute, path: "nodes", component: Nodes });
const schedulesRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "schedules",
  validateSearch: (search: Record<string, unknown>): ScheduleSearch => pick(search, ["edit"] as const),
  component: lazyRouteComponent(() => import("./pages/Schedules.tsx"), "Schedules"),
});

// Dispatch's pages (docs/dispatch.md): loaded with uPlot when first shown.
const dispatchRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "dispatch",
  validateSearch: (search: Record<string, unknown>): DispatchSearch => pick(search, ["edit"] as const),
  component: lazyRouteComponent(() => import("./pages/Dispatch.tsx"), "DispatchOverview"),
});
const publishersRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "dispatch/publishers",
  validateSearch: (search: Record<string, unknown>): PublisherSearch => pick(search, ["topic", "edit"] as const),
  component: lazyRouteComponent(() => import("./pages/DispatchPublishers.tsx"), "DispatchPublishers"),
});
const messagesRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "dispatch/messages",
  validateSearch: (search: Record<string, unknown>): DispatchMessageSearch =>
    pick(search, ["topic", "attribute", "q", "from", "to", "state", "send"] as const),
  component: lazyRouteComponent(() => import("./pages/DispatchMessages.tsx"), "DispatchMessages"),
});
const messageRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "dispatch/messages/$id",
  component: lazyRouteComponent(() => import("./pages/DispatchMessages.tsx"), "DispatchMessage"),
});
const deliveriesRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "dispatch/deliveries",
  validateSearch: (search: Record<string, unknown>): DeliverySearch => pick(search, ["state", "publisher"] as const),
  component: lazyRouteComponent(() => import("./pages/DispatchDeliveries.tsx"), "DispatchDeliveries"),
});

const routeTree = rootRoute.addChildren([
  overviewRoute,
  tasksRoute,
  taskRoute,
  queuesRoute,
  nodesRoute,
  schedulesRoute,
  dispatchRoute,
  publishersRoute,
  messagesRoute,
  messageRoute,
  deliveriesRoute,
]);

export const router = createRouter({
  routeTree,
  basepath: BASE_PATH,
  defaultPreload: false,
  scrollRestoration: true,
  parseSearch: (search) => Object.fromEntries(new URLSearchParams(search)),
  stringifySearch: (search) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(search)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const textValue = params.toString();
    return textValue === "" ? "" : `?${textValue}`;
  },
});

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
