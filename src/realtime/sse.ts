/**
 * The live stream over Server-Sent Events, for clients that only read (an EventSource): one subscription per
 * request, its channels and start in the query, resumed by the `Last-Event-ID` a browser sends when it reconnects
 * (a position, `<epoch>:<offset>`). Every event and every ping carries its position as its id, so a reconnect
 * resumes from the latest one even on a quiet channel. The send buffer is bounded as on the WebSocket.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { bearerToken } from "../core/bearer.ts";
import type { Json, LogEvent } from "../core/task.ts";
import { Access, type AccessPolicy } from "./access.ts";
import type { LiveNode, LiveSubscriptionHandle } from "./live-node.ts";
import { eventFrame, MAX_CHANNELS_PER_SUBSCRIPTION, type Position, parsePositionText } from "./protocol.ts";
import { type LiveSessionOptions, MAX_QUEUED_EVENTS } from "./websocket.ts";

type Query = { channels?: unknown; since?: unknown; token?: unknown };

export async function serveSse(
  request: FastifyRequest,
  reply: FastifyReply,
  node: LiveNode,
  policy: AccessPolicy,
  options: LiveSessionOptions,
): Promise<void> {
  const query = request.query as Query;
  const names = typeof query.channels === "string" ? query.channels.split(",").filter((c) => c !== "") : [];
  if (names.length === 0 || names.length > MAX_CHANNELS_PER_SUBSCRIPTION) {
    return badRequest(reply, `channels must name 1 to ${MAX_CHANNELS_PER_SUBSCRIPTION} channels, comma-separated`);
  }
  const lastEventId = request.headers["last-event-id"];
  const sinceText = typeof lastEventId === "string" && lastEventId !== "" ? lastEventId : query.since;
  let since: Position | undefined;
  if (sinceText !== undefined) {
    since = typeof sinceText === "string" ? parsePositionText(sinceText) : undefined;
    if (since === undefined) return badRequest(reply, "since (or Last-Event-ID) must be <epoch>:<offset>");
  }
  const token = bearerToken(request.headers.authorization) ?? (typeof query.token === "string" ? query.token : null);
  const access = new Access(policy);
  // One token serves both: the API token opens everything; otherwise it is taken as a subscription token.
  const channels = access.presentApiToken(token) ? access.follow(names, null) : access.follow(names, token);
  if (!Array.isArray(channels)) {
    const status = channels.code === "invalid_channel" ? 400 : channels.code === "unauthorized" ? 401 : 403;
    return reply.code(status).send({
      error: {
        code: channels.code === "invalid_channel" ? "validation_failed" : channels.code,
        message: channels.message,
      },
    });
  }

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write("retry: 1000\n\n");
  let closed = false;
  let handle: LiveSubscriptionHandle | null = null;
  /** Events waiting behind the replay until it has been written out; null once it has. */
  let queue: LogEvent[] | null = [];
  let ended = () => {};
  const endedPromise = new Promise<void>((resolve) => (ended = resolve));
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const end = () => {
    if (closed) return;
    closed = true;
    ended();
    clearInterval(heartbeat);
    handle?.close();
    res.end();
  };
  // Heard from here on: a client gone while the epoch is read must not leave a heartbeat and a subscription behind.
  res.on("close", end);
  const epoch = await node.epoch().catch(() => "");
  if (closed) return;
  const cutOff = () => {
    res.write(`event: close\ndata: ${JSON.stringify({ code: "slow_consumer" })}\n\n`);
    end();
  };
  const write = (text: string): void => {
    if (closed) return;
    if (res.writableLength > options.maxBufferBytes) {
      cutOff();
      return;
    }
    res.write(text);
  };
  const eventText = (event: LogEvent) => {
    const { sub: _sub, type: _type, ...body } = eventFrame("", event);
    return `id: ${epoch}:${event.offset}\nevent: ${event.type}\ndata: ${JSON.stringify(body)}\n\n`;
  };
  const sendEvent = (event: LogEvent) => write(eventText(event));
  heartbeat = setInterval(() => {
    const offset = handle === null ? node.cursor : handle.offset;
    write(`id: ${epoch}:${offset}\nevent: ping\ndata: ${JSON.stringify({ offset })}\n\n`);
  }, options.heartbeatMs);
  try {
    handle = await node.subscribe(names, { since }, (event) => (queue !== null ? queue.push(event) : sendEvent(event)));
  } catch (error) {
    write(
      `event: error\ndata: ${JSON.stringify({ code: "unavailable", message: error instanceof Error ? error.message : String(error) })}\n\n`,
    );
    end();
    return;
  }
  if (closed) return handle.close();
  const answer: Record<string, Json> = {
    channels: names,
    recovered: handle.recovered,
    epoch: handle.position.epoch,
    offset: handle.position.offset,
  };
  if (handle.reason !== null) answer.reason = handle.reason;
  write(`event: subscribed\ndata: ${JSON.stringify(answer)}\n\n`);
  // The replay at the pace the client reads, as on the WebSocket (websocket.ts, flushEarly).
  for (let i = 0; i < queue.length; i++) {
    if (closed) return;
    if (queue.length - i > MAX_QUEUED_EVENTS) return cutOff();
    const text = eventText(queue[i]!);
    if (res.writableLength + text.length <= options.maxBufferBytes / 2) {
      res.write(text);
      continue;
    }
    await Promise.race([new Promise<void>((resolve) => res.write(text, () => resolve())), endedPromise]);
  }
  queue = null;
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: { code: "validation_failed", message } });
}
