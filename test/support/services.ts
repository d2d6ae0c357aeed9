/**
 * Where the tests find the real servers, and what they do when one is missing: under CI=true a missing server
 * fails the test; elsewhere the test is skipped with a loud warning, so a laptop without RabbitMQ still runs the rest.
 *
 * Addresses: CONVEYOR_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test; postgresUrl() and
 * postgresAvailable() are those of ./postgres.ts) and CONVEYOR_TEST_AMQP_URL (default
 * amqp://guest:guest@127.0.0.1:5672).
 */
import type { TestContext } from "node:test";
import amqp from "amqplib";

export { postgresAvailable, postgresUrl } from "./postgres.ts";

const PROBE_TIMEOUT_MS = 3000;

export function amqpUrl(): string {
  return process.env.CONVEYOR_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
}

let amqpProbe: Promise<boolean> | null = null;

/** Whether RabbitMQ accepts a connection (probed once per process). */
export function amqpAvailable(): Promise<boolean> {
  amqpProbe ??= (async () => {
    try {
      const connection = await amqp.connect(amqpUrl(), { timeout: PROBE_TIMEOUT_MS });
      connection.on("error", () => {});
      await connection.close();
      return true;
    } catch {
      return false;
    }
  })();
  return amqpProbe;
}

/**
 * Returns true when the service is there. Otherwise fails the test under CI=true, or skips it with a loud warning
 * and returns false (the caller returns at once).
 */
export function requireService(t: TestContext, name: string, available: boolean): boolean {
  if (available) return true;
  if (process.env.CI === "true") throw new Error(`${name} is not reachable, and CI=true requires it`);
  console.warn(
    `\n!!! ${name} is not reachable: skipping "${t.name}". Start it, or set CI=true to make this a failure. !!!\n`,
  );
  t.skip(`${name} is not reachable`);
  return false;
}
