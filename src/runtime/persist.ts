/**
 * Writes that must not be lost while the node lives (a completion, a failure) are retried until the store
 * takes them: a store that restarts or is busy for a while delays them, it does not drop them. If the node
 * dies meanwhile, the rescuer on another node takes over the task.
 */
import type { Log } from "./handler.ts";

export async function persist<T>(what: string, write: () => Promise<T>, logger: Log, maxDelayMs = 5000): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const delay = Math.min(maxDelayMs, 50 * 2 ** Math.min(attempt, 10));
      logger.warn(`${what} failed; retrying in ${delay} ms`, { err: error, attempt });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
