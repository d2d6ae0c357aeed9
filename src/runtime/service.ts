/**
 * A background loop of a node (poller, heartbeat, rescuer, ...), run under a Supervisor.
 */
export type Service = {
  readonly name: string;
  /**
   * Runs until `signal` aborts, then cleans up and returns. A throw (or rejection) is a crash; returning before
   * the signal aborted is an unexpected exit. The supervisor restarts the service in both cases.
   */
  run(signal: AbortSignal): Promise<void>;
};
