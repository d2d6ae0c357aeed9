/**
 * The task type the load bench enqueues, for `conveyor start --handlers`: a no-op, so that the nodes drain what
 * the clients add (the task list keeps moving under the readers) and the figures are the API's and the store's.
 */
import type { Conveyor } from "../../src/index.ts";

export const LOAD_TASK_TYPE = "bench.load";

export default function register(conveyor: Conveyor): void {
  conveyor.define(LOAD_TASK_TYPE, async () => null);
}
