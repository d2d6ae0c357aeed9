/**
 * A singleton task type across real node processes: one `cluster.cleaner` runs cluster-wide (it prints
 * `CLEANER <node> <epochMs>` every 200 ms); when its node is `kill -9`ed, another node starts printing within the
 * design's 5 s, and never are two nodes printing at once. Three nodes, two kills: the cleaner moves twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { allTasks, Cluster, eventually, type NodeProcess } from "./harness.ts";

const MOVE_LIMIT_MS = 5000;
/** How long to watch a printer alone before and after each move. */
const WATCH_MS = 1500;

type Print = { node: string; at: number };

function prints(nodes: NodeProcess[]): Print[] {
  return nodes
    .flatMap((node) => node.words("CLEANER").map(({ words }) => ({ node: words[1]!, at: Number(words[2]) })))
    .sort((x, y) => x.at - y.at);
}

/** The node printing now: the one that printed in the last 600 ms, waited for until exactly one has. */
async function printer(nodes: NodeProcess[], after: number, timeoutMs: number): Promise<NodeProcess> {
  return eventually(
    "exactly one node printing CLEANER",
    timeoutMs,
    async () => {
      const recent = new Set(
        prints(nodes)
          .filter((p) => p.at > Math.max(after, Date.now() - 600))
          .map((p) => p.node),
      );
      if (recent.size > 1) throw new Error(`two nodes print CLEANER at once: ${[...recent].join(", ")}`);
      return recent.size === 1 ? nodes.find((node) => node.name === [...recent][0])! : undefined;
    },
    25,
  );
}

test("a singleton runs on one node at a time and moves to a survivor within 5 s of a kill -9", {
  timeout: 120_000,
}, async (t) => {
  const cluster = await Cluster.open(t, "singleton");
  if (cluster === null) return;
  const nodes = await cluster.startAll(
    ["a", "b", "c"].map((name) => ({ name, concurrency: 2, env: { CLUSTER_CLEANER: "1" } })),
  );
  await cluster.settled();

  let current = await printer(nodes, 0, 15_000);
  const moves: number[] = [];
  for (let round = 1; round <= 2; round++) {
    // Watch it print alone for a while.
    const watchFrom = Date.now();
    await eventually(`${current.name} to print alone for ${WATCH_MS} ms`, WATCH_MS + 3000, async () => {
      const recent = prints(nodes).filter((p) => p.at >= watchFrom);
      const others = recent.filter((p) => p.node !== current.name);
      if (others.length > 0) throw new Error(`${others[0]!.node} printed while ${current.name} held the singleton`);
      return Date.now() - watchFrom >= WATCH_MS && recent.length >= 5 ? true : undefined;
    });
    const { leader } = await cluster.settled();
    const killedAt = await current.kill9();
    const survivors: NodeProcess[] = cluster.alive();
    const started: { node: NodeProcess; at: number; id: number; attempt: number } = await Promise.any(
      survivors.map((node) =>
        node
          .waitWords("CLEANER-START", "CLEANER-START", (w) => Number(w[4]) > killedAt, MOVE_LIMIT_MS + 5000)
          .then(({ words }) => ({ node, at: Number(words[4]), id: Number(words[1]), attempt: Number(words[2]) })),
      ),
    );
    const firstPrint = prints(nodes).find((p) => p.node === started.node.name && p.at >= started.at)?.at ?? started.at;
    const moveMs = firstPrint - killedAt;
    moves.push(moveMs);
    t.diagnostic(
      `round ${round}: killed ${current.name}${current === leader ? " (also the leader)" : ""}; ${started.node.name} printing ${moveMs} ms later (task ${started.id} attempt ${started.attempt})`,
    );
    assert.ok(moveMs < MOVE_LIMIT_MS, `the singleton moved in ${moveMs} ms (limit ${MOVE_LIMIT_MS} ms)`);
    const next: NodeProcess = await printer(survivors, killedAt, 5000);
    assert.equal(next, started.node);
    current = next;
  }
  // And the last one prints alone too.
  const watchFrom = Date.now();
  await eventually(`${current.name} to print alone`, WATCH_MS + 3000, async () => {
    const recent = prints(nodes).filter((p) => p.at >= watchFrom);
    if (recent.some((p) => p.node !== current.name)) throw new Error("another node printed");
    return Date.now() - watchFrom >= WATCH_MS ? true : undefined;
  });
  t.diagnostic(`singleton moves: ${moves.join(", ")} ms`);

  // Over the whole run, the printer changed exactly at the kills: the sequence of printers is a, then b, then c
  // (in kill order), each node printing in one stretch that ends before the next begins.
  const all = prints(nodes);
  const stretches: { node: string; first: number; last: number }[] = [];
  for (const p of all) {
    const last = stretches.at(-1);
    if (last !== undefined && last.node === p.node) last.last = p.at;
    else stretches.push({ node: p.node, first: p.at, last: p.at });
  }
  assert.equal(stretches.length, 3, `three stretches of printing, one per holder: ${JSON.stringify(stretches)}`);
  for (let i = 1; i < stretches.length; i++)
    assert.ok(stretches[i]!.first > stretches[i - 1]!.last, "stretches do not overlap");

  // One active singleton task in the store.
  const active = await allTasks(cluster.store(), {
    type: "cluster.cleaner",
    states: ["scheduled", "queued", "running"],
  });
  assert.equal(
    active.length,
    1,
    `one active cleaner task: ${JSON.stringify(active.map((task) => [task.id, task.state]))}`,
  );
  assert.equal(active[0]!.state, "running");
  assert.equal(active[0]!.node, current.nodeId);
  assert.equal(active[0]!.stalls, 2, "rescued once per kill");
});
