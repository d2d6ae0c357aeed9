/**
 * Producers against `conveyor start` nodes: each POSTs one task to /api/tasks, waits for the answer, and sends the
 * next, until the time is up. The producers are dealt out in turn between the nodes, each with a connection of its
 * own (an undici Pool per node, one connection per producer), as bench/load does.
 */
import { Pool } from "undici";
import type { CliNode } from "../lib/cli-node.ts";
import { EndpointRecorder } from "../load/latency.ts";

export type DriveOutcome = { recorder: EndpointRecorder; seconds: number };

export async function driveProducers(options: {
  nodes: CliNode[];
  producers: number;
  seconds: number;
  taskType: string;
  /** Called once a second with the seconds elapsed and the adds answered so far. */
  tick: (elapsed: number, answered: number) => void;
}): Promise<DriveOutcome> {
  const { nodes, producers, seconds, taskType } = options;
  const pools = nodes.map(
    (node) => new Pool(node.url, { connections: Math.ceil(producers / nodes.length), pipelining: 1 }),
  );
  const poolOf = (producer: number) => pools[producer % pools.length]!;
  try {
    // Connections are opened before the clock starts (one GET /api/health each, not counted): a connect is not
    // part of an add's latency, and none is opened again (keep-alive) while the producers run.
    await Promise.all(
      Array.from({ length: producers }, async (_, i) => {
        const response = await poolOf(i).request({ method: "GET", path: "/api/health" });
        await response.body.arrayBuffer();
      }),
    );
    const recorder = new EndpointRecorder();
    const started = performance.now();
    const endAt = started + seconds * 1000;
    let sequence = 0;
    const producer = async (pool: Pool) => {
      while (performance.now() < endAt) {
        const body = JSON.stringify({ type: taskType, data: { n: sequence++ } });
        const t0 = performance.now();
        try {
          const response = await pool.request({
            method: "POST",
            path: "/api/tasks",
            headers: { "content-type": "application/json" },
            body,
          });
          await response.body.arrayBuffer();
          recorder.record(performance.now() - t0, response.statusCode === 201 ? null : String(response.statusCode));
        } catch (error) {
          recorder.record(performance.now() - t0, (error as { code?: string }).code ?? String(error));
        }
      }
    };
    const ticker = setInterval(() => options.tick(Math.round((performance.now() - started) / 1000), recorder.ok), 1000);
    try {
      await Promise.all(Array.from({ length: producers }, (_, i) => producer(poolOf(i))));
    } finally {
      clearInterval(ticker);
    }
    return { recorder, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
  }
}
