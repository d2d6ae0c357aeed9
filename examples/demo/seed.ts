/**
 * Enqueues a few demo tasks when `npm start` boots, so a newcomer sees work flow at once
 * (`GET /api/tasks`). Loaded as a handler module after handlers.ts.
 */
import type { Conveyor } from "../../src/index.ts";

export default async function seed(conveyor: Conveyor): Promise<void> {
  await conveyor.enqueueMany([
    { type: "demo.sleep", data: { ms: 3000, steps: 10 } },
    { type: "demo.sleep", data: { ms: 8000, steps: 20 }, priority: 5 },
    { type: "demo.fail", data: { times: 2 } },
    { type: "demo.spin", data: { ms: 2000 } },
    { type: "demo.sleep", data: { ms: 2000, steps: 4 }, delay: 5000 },
  ]);
}
