/**
 * Dispatch's topics and publishers: creating (checked by inputs.ts), reading, changing, deleting, rotating a
 * publisher's signing secret, and keeping the recovery schedule on while a topic wants recovery.
 */
import { NotFoundError, ValidationError } from "../core/errors.ts";
import type { Publisher, PublisherChanges, Topic } from "../store/dispatch-store.ts";
import { type DispatchParts, RECOVER_TASK, RECOVERY_SCHEDULE } from "./parts.ts";
import { Checker, checkPublisher, checkPublisherPatch, checkTopic, INVALID } from "./inputs.ts";
import { generateSecret, isValidSecret, rotate } from "./signing.ts";

export async function createTopic(parts: DispatchParts, input: Record<string, unknown>): Promise<Topic> {
  const topic = checkTopic(input);
  await parts.ready();
  const created = await parts.conveyor.store.dispatch.topicCreate({ topic, now: parts.clock.now() });
  parts.notifier.eventsWritten();
  if (created.recoveryEnabled) await syncRecoverySchedule(parts);
  return created;
}

export async function listTopics(parts: DispatchParts): Promise<Topic[]> {
  await parts.ready();
  return parts.conveyor.store.dispatch.topicList();
}

export async function getTopic(parts: DispatchParts, idOrName: number | string): Promise<Topic> {
  await parts.ready();
  const topic =
    typeof idOrName === "number"
      ? await parts.conveyor.store.dispatch.topicGet({ id: idOrName })
      : await parts.conveyor.store.dispatch.topicGet({ name: idOrName });
  if (topic === null) throw new NotFoundError("topic_not_found", `no topic ${JSON.stringify(idOrName)}`);
  return topic;
}

export async function updateTopic(
  parts: DispatchParts,
  id: number,
  changes: { originHost?: string; recoveryEnabled?: boolean },
): Promise<Topic> {
  const c = new Checker(changes);
  if (changes.originHost !== undefined) c.requiredText("origin_host", 2048);
  c.done("bad topic change");
  await parts.ready();
  const updated = await parts.conveyor.store.dispatch.topicUpdate({ id, changes, now: parts.clock.now() });
  if (updated === null) throw new NotFoundError("topic_not_found", `no topic ${id}`);
  parts.notifier.eventsWritten();
  if (changes.recoveryEnabled !== undefined) await syncRecoverySchedule(parts);
  return updated;
}

/** The topic a publisher or message names: unknown is Postoffice's `{"topic": ["is invalid"]}`. */
async function namedTopic(parts: DispatchParts, name: string): Promise<Topic> {
  const topic = await parts.conveyor.store.dispatch.topicGet({ name });
  if (topic === null)
    throw new ValidationError(`no topic named ${JSON.stringify(name)}`, [
      { in: "body", field: "topic", message: INVALID },
    ]);
  return topic;
}

export async function createPublisher(parts: DispatchParts, input: Record<string, unknown>): Promise<Publisher> {
  const spec = checkPublisher(input);
  await parts.ready();
  const topic = await namedTopic(parts, spec.topic);
  const secret = spec.secret === true ? generateSecret() : spec.secret;
  const { topic: _name, secret: _secret, ...fields } = spec;
  const publisher = await parts.conveyor.store.dispatch.publisherCreate({
    publisher: { ...fields, topicId: topic.id, secrets: secret === null ? [] : [{ secret, expiresAt: null }] },
    now: parts.clock.now(),
  });
  parts.notifier.eventsWritten();
  return publisher;
}

export async function listPublishers(
  parts: DispatchParts,
  filter: { topic?: string | number; includeDeleted?: boolean },
): Promise<Publisher[]> {
  await parts.ready();
  const topicId = filter.topic === undefined ? undefined : (await getTopic(parts, filter.topic)).id;
  return parts.conveyor.store.dispatch.publisherList({ topicId, includeDeleted: filter.includeDeleted ?? false });
}

export async function getPublisher(parts: DispatchParts, id: number): Promise<Publisher> {
  await parts.ready();
  const publisher = await parts.conveyor.store.dispatch.publisherGet({ id });
  if (publisher === null) throw new NotFoundError("publisher_not_found", `no publisher ${id}`);
  return publisher;
}

export async function updatePublisher(
  parts: DispatchParts,
  id: number,
  input: Record<string, unknown>,
): Promise<Publisher> {
  const current = await getPublisher(parts, id);
  const changes: PublisherChanges = checkPublisherPatch(input, current.type);
  if (changes.active === true) changes.disabledReason = null;
  if (changes.active === false && !("disabledReason" in input)) changes.disabledReason = "disabled by request";
  return change(parts, id, changes);
}

async function change(parts: DispatchParts, id: number, changes: PublisherChanges): Promise<Publisher> {
  const now = parts.clock.now();
  const updated = await parts.conveyor.store.dispatch.publisherUpdate({ id, changes, now });
  if (updated === null) throw new NotFoundError("publisher_not_found", `no publisher ${id} (or it was deleted)`);
  parts.notifier.eventsWritten();
  // Held deliveries were made due now: the timer gives them tasks.
  if (updated.released > 0) {
    parts.timer.due(now);
    parts.conveyor.bus.publish("scheduled", { at: now.getTime() });
  }
  return updated.publisher;
}

export async function deletePublisher(parts: DispatchParts, id: number): Promise<Publisher | null> {
  await parts.ready();
  const deleted = await parts.conveyor.store.dispatch.publisherDelete({ id, now: parts.clock.now() });
  if (deleted !== null) parts.notifier.eventsWritten();
  return deleted;
}

export async function rotateSecret(
  parts: DispatchParts,
  id: number,
  secret?: string,
): Promise<{ publisher: Publisher; secret: string }> {
  if (secret !== undefined && !isValidSecret(secret))
    throw new ValidationError("a secret is whsec_ and the base64 of 24 to 64 bytes", [
      { in: "body", field: "secret", message: INVALID },
    ]);
  const current = await getPublisher(parts, id);
  const next = secret ?? generateSecret();
  const publisher = await change(parts, id, { secrets: rotate(current.secrets, next, parts.clock.now()) });
  return { publisher, secret: next };
}

/**
 * The recovery schedule exists while some topic has recovery enabled (a task every 30 s, once in the cluster), and
 * not otherwise: a cluster with no origin host to poll runs no recovery task at all.
 */
export async function syncRecoverySchedule(parts: DispatchParts): Promise<void> {
  const { conveyor, options } = parts;
  const hosts = await conveyor.store.dispatch.topicRecoveryHosts();
  const existing = (await conveyor.schedules()).find((s) => s.name === RECOVERY_SCHEDULE);
  if (hosts.length === 0) {
    if (existing !== undefined) await conveyor.unschedule(RECOVERY_SCHEDULE);
    return;
  }
  if (existing?.cron === options.recoveryCron && existing.enabled) return;
  await conveyor.schedule(RECOVERY_SCHEDULE, {
    cron: options.recoveryCron,
    type: RECOVER_TASK,
    queue: options.queue,
    maxAttempts: 1,
  });
}
