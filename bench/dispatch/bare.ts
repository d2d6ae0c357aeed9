/**
 * The physical limit of the dispatch bench: a bare HTTP client loop (undici, a pool of `concurrency` connections)
 * posting the very bodies and headers dispatch sends (a message's payload with its attributes merged in, content-type,
 * message-id, user agent) to the same receiver at the same concurrency, nothing stored. Its rate is what the
 * receiver and the machine allow; dispatch's rate is measured against it.
 */
import { Pool } from "undici";
import { benchBody } from "./settings.ts";

type Job = { url: string; n: number; concurrency: number };

process.once("message", async ({ url, n, concurrency }: Job) => {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: concurrency, pipelining: 1 });
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const { statusCode, body } = await pool.request({
        path: target.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "message-id": String(i + 1), "user-agent": "bench" },
        body: benchBody(i),
      });
      await body.dump();
      if (statusCode !== 200) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  process.send?.({ kind: "done", rate: n / seconds, seconds, failed }, () => process.exit(0));
});
