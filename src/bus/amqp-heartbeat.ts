/**
 * The AMQP heartbeat Conveyor asks for when a URL names none (the bus and the dispatcher's AMQP sender). RabbitMQ
 * offers 60 s and amqplib calls a silent broker dead after two missed beats, so a frozen broker (a partition, a
 * hung host) went unnoticed for two minutes: the bus looked up while no signal crossed it. At 5 s (the lowest
 * RabbitMQ's guide advises) it is noticed within about 10 s. A `heartbeat` in the URL, 0 included, is kept.
 */
export const DEFAULT_HEARTBEAT_S = 5;

export function withDefaultHeartbeat(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // amqplib reports a malformed URL in its own words
  }
  if (parsed.searchParams.has("heartbeat")) return url;
  parsed.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT_S));
  return parsed.toString();
}
