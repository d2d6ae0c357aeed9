/**
 * The parts every dispatch operation works with, made once by the Dispatch (dispatch.ts) and handed to the
 * operations of publishers.ts, messages.ts and deliveries.ts; and the names dispatch gives its tasks.
 */
import type { Conveyor } from "../runtime/conveyor.ts";
import type { Notifier } from "../runtime/notifier.ts";
import type { DeliveryTaskTemplate } from "../store/dispatch-store.ts";
import type { Clock } from "./clock.ts";
import type { HttpSender } from "./http-sender.ts";
import type { ResolvedDispatchOptions } from "./options.ts";
import type { RetryTimer } from "./retry-timer.ts";

export const DELIVER_TASK = "dispatch.deliver";
export const RECOVER_TASK = "dispatch.recover";
export const RECOVERY_SCHEDULE = "dispatch.recovery";

export type DispatchParts = {
  conveyor: Conveyor;
  options: ResolvedDispatchOptions;
  clock: Clock;
  random: () => number;
  notifier: Notifier;
  timer: RetryTimer;
  http: HttpSender;
  task: DeliveryTaskTemplate;
  /** The store migrated (before any operation). */
  ready: () => Promise<void>;
};
