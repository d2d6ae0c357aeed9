/**
 * Test support for the dispatch HTTP tests: a node with dispatch (dispatch/fixtures/dispatch-node.ts: a ManualClock,
 * loopback allow-listed, the tripwire) on SQLite or PostgreSQL, its HTTP server listening on a free port, and a
 * `call` helper over fetch. Everything is closed when the test ends.
 */
import type { TestContext } from "node:test";
import { type DispatchNode, dispatchNode } from "../dispatch/fixtures/dispatch-node.ts";
import type { DispatchOptions } from "../dispatch/options.ts";
import type { StoreKind } from "../runtime/fixtures/test-node.ts";
import { type CallInit, httpCaller, type Reply } from "./server-fixture.ts";
import { buildServer } from "./server.ts";

export type DispatchServer = DispatchNode & {
  base: string;
  call(method: string, path: string, init?: CallInit): Promise<Reply>;
};

export async function dispatchServer(
  t: TestContext,
  store: StoreKind,
  options: DispatchOptions = {},
): Promise<DispatchServer> {
  const node = await dispatchNode(t, store, options);
  const app = await buildServer({ conveyor: node.dispatch.conveyor, dashboard: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  t.after(() => app.close());
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("the server has no port");
  const base = `http://127.0.0.1:${address.port}`;
  return { ...node, base, call: httpCaller(base) };
}
