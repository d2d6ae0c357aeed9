/**
 * What the live transports need of a node: its log position, subscriptions with replay, and publishing. A
 * Conveyor's `live` implements it (runtime/live.ts); the transports know nothing else of the node.
 */
import type { Json, LogEvent } from "../core/task.ts";
import type { LiveGrant, LiveTokenRefusal } from "../core/live-token.ts";
import type { Position } from "./protocol.ts";

export type LiveSubscriptionHandle = {
  readonly recovered: boolean;
  readonly reason: string | null;
  /** Where the subscription's events start. */
  readonly position: Position;
  /** The last offset handed to (or skipped for) it: it is live up to there. */
  readonly offset: number;
  close(): void;
};

export interface LiveNode {
  readonly nodeId: string;
  /** The offset up to which live events have been handed out on this node. */
  readonly cursor: number;
  epoch(): Promise<string>;
  position(): Promise<Position>;
  subscribe(
    channels: string[],
    options: { since?: Position | undefined },
    listener: (event: LogEvent) => void,
  ): Promise<LiveSubscriptionHandle>;
  publish(channel: string, data: Json): Promise<void>;
  /** Checks a subscription token; null when the node has no live secret (then no such token is valid). */
  readonly verifyToken: ((token: string) => LiveGrant | LiveTokenRefusal) | null;
}
