/**
 * Dispatch's options, and what the environment says of them (CONVEYOR_DISPATCH_*, and Postoffice's own
 * MAX_BULK_MESSAGES). A bad value stops the node at start with a ConfigError naming it.
 */
import { ConfigError } from "../core/errors.ts";
import type { Clock } from "./clock.ts";
import { type LookupFunction, type Network, parseAllowNets } from "./ssrf-guard.ts";

export type DispatchOptions = {
  /** Dispatch's time (retry schedule, attempt times): a ManualClock in tests. Default the system's. */
  clock?: Clock;
  /** The jitter's randomness. */
  random?: () => number;
  /** Networks the SSRF guard lets through (default CONVEYOR_DISPATCH_ALLOW_NETS): on-premise receivers. */
  allowNets?: string | Network[];
  /** The DNS resolver the SSRF guard wraps (default dns.lookup). */
  resolve?: LookupFunction;
  /** Wraps the guarded lookup (tests: a tripwire that refuses all but loopback). */
  interceptLookup?: (lookup: LookupFunction) => LookupFunction;
  /** The RabbitMQ of AMQP publishers (default CONVEYOR_DISPATCH_AMQP_URL; none: their attempts fail). */
  amqpUrl?: string | null;
  /** The queue of delivery tasks. Default "dispatch". */
  queue?: string;
  /** Most messages a bulk may carry (default MAX_BULK_MESSAGES, else 3000, Postoffice's). */
  maxBulkMessages?: number;
  /**
   * Disable a publisher whose every attempt has failed for this long, when one of its deliveries runs out of
   * attempts (Svix: 5 days). Default CONVEYOR_DISPATCH_AUTO_DISABLE_AFTER_MS, else never (Postoffice never did).
   */
  autoDisableAfterMs?: number | null;
  /** When the origin hosts of topics with recovery enabled are polled. Default every 30 s (Postoffice's). */
  recoveryCron?: string;
  /** The retry timer's backstop poll. Default the node's pollIntervalMs. */
  pollIntervalMs?: number;
  /**
   * Whether this node sends deliveries (defines the dispatch task types; the node must not be started yet). False
   * makes a node that only takes the API's requests. Default true.
   */
  deliver?: boolean;
};

export type ResolvedDispatchOptions = {
  allow: Network[];
  amqpUrl: string | null;
  queue: string;
  maxBulkMessages: number;
  autoDisableAfterMs: number | null;
  recoveryCron: string;
};

export const DEFAULT_MAX_BULK_MESSAGES = 3000;
export const DEFAULT_RECOVERY_CRON = "*/30 * * * * *";

export function resolveDispatchOptions(
  options: DispatchOptions,
  env: Record<string, string | undefined> = process.env,
): ResolvedDispatchOptions {
  const allow =
    typeof options.allowNets === "object"
      ? options.allowNets
      : parseAllowNets(options.allowNets ?? env.CONVEYOR_DISPATCH_ALLOW_NETS);
  const maxBulkMessages = options.maxBulkMessages ?? positive("MAX_BULK_MESSAGES", env.MAX_BULK_MESSAGES);
  const autoDisable =
    options.autoDisableAfterMs !== undefined
      ? options.autoDisableAfterMs
      : positive("CONVEYOR_DISPATCH_AUTO_DISABLE_AFTER_MS", env.CONVEYOR_DISPATCH_AUTO_DISABLE_AFTER_MS);
  return {
    allow,
    amqpUrl: options.amqpUrl !== undefined ? options.amqpUrl : (env.CONVEYOR_DISPATCH_AMQP_URL ?? null) || null,
    queue: options.queue ?? "dispatch",
    maxBulkMessages: maxBulkMessages ?? DEFAULT_MAX_BULK_MESSAGES,
    autoDisableAfterMs: autoDisable ?? null,
    recoveryCron: options.recoveryCron ?? DEFAULT_RECOVERY_CRON,
  };
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new ConfigError(`${name} must be a positive integer, got ${text}`);
  return value;
}
