/**
 * Conveyor's public API.
 */
export type { TaskListQuery, TaskPage } from "./runtime/task-listing.ts";
export {
  Conveyor,
  type NodeTree,
  type ClusterView,
  type ScheduleView,
} from "./runtime/conveyor.ts";
export type { ScheduleSpec } from "./core/schedule-input.ts";
export type { ConveyorOptions } from "./runtime/options.ts";
export type {
  TaskContext,
  TaskHandler,
  TaskLogger,
  TaskTypeOptions,
  Isolation,
  ThreadHandlerRef,
} from "./runtime/handler.ts";
export type {
  Task,
  TaskInput,
  TaskEvent,
  TaskEventType,
  LogEvent,
  LogEventType,
  ChannelEventType,
  TaskProgress,
  Json,
} from "./core/task.ts";
export { TASK_STATES, type TaskState } from "./core/states.ts";
export {
  ConveyorError,
  ValidationError,
  NotFoundError,
  ConflictError,
  ConfigError,
  TaskOutcomeError,
  UnrecoverableError,
  ERROR_CODES,
  type ErrorCode,
} from "./core/errors.ts";
export type { Store, StoreCapabilities, QueueStats, NodeRecord, Schedule } from "./store/store.ts";
export { SqliteStore } from "./store/sqlite/sqlite-store.ts";
export { PostgresStore } from "./store/postgres/postgres-store.ts";
export type { Bus } from "./bus/bus.ts";
export { LocalBus } from "./bus/local-bus.ts";
export { PostgresBus } from "./bus/postgres-bus.ts";
export { AmqpBus } from "./bus/amqp-bus.ts";
export {
  buildServer,
  conveyorRoutes,
  createRequestHandler,
  type ServerOptions,
  type ConveyorRoutesOptions,
  type ConveyorRequestHandler,
} from "./http/server.ts";
export { Dispatch } from "./dispatch/dispatch.ts";
export type { DispatchOptions } from "./dispatch/options.ts";
export { ManualClock, type Clock } from "./dispatch/clock.ts";
export type { SendOptions, SendOutcome, MessageQuery, MessagePage, MessageDetail } from "./dispatch/messages.ts";
export type { DeliveryQuery, DeliveryPage, DeliveryDetail } from "./dispatch/deliveries.ts";
export type {
  Topic,
  Publisher,
  Message,
  Delivery,
  DeliveryState,
  Attempt,
  AttemptOutcome,
  PublisherType,
  RetryMode,
} from "./store/dispatch-store.ts";
