/**
 * One sample of the node under soak, read from its /metrics (prom-client's process metrics, src/http/metrics.ts):
 * resident memory, heap used, open handles (libuv handles) and active resources (process.getActiveResourcesInfo():
 * handles and requests), the event-loop delay's p99 since the scrape before (prom-client resets its
 * monitorEventLoopDelay histogram at each scrape, so each sample covers its own interval), and the tasks per state.
 */
export type Sample = {
  /** Seconds since the soak's load began. */
  t: number;
  rssMB: number;
  heapUsedMB: number;
  handles: number;
  resources: number;
  eventLoopP99Ms: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
};

export async function scrape(baseUrl: string, t: number): Promise<Sample> {
  const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const text = await response.text();
  const one = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
    if (match === null) throw new Error(`/metrics has no ${name}`);
    return Number(match[1]);
  };
  const tasks = (state: string) => {
    let sum = 0;
    for (const match of text.matchAll(
      new RegExp(`^conveyor_tasks\\{[^}]*state="${state}"[^}]*\\} ([0-9.e+-]+)$`, "gm"),
    ))
      sum += Number(match[1]);
    return sum;
  };
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return {
    t: Math.round(t * 10) / 10,
    rssMB: mb(one("process_resident_memory_bytes")),
    heapUsedMB: mb(one("nodejs_heap_size_used_bytes")),
    handles: one("nodejs_active_handles_total"),
    resources: one("nodejs_active_resources_total"),
    eventLoopP99Ms: Math.round(one("nodejs_eventloop_lag_p99_seconds") * 10_000) / 10,
    queued: tasks("queued"),
    running: tasks("running"),
    completed: tasks("completed"),
    failed: tasks("failed"),
  };
}
