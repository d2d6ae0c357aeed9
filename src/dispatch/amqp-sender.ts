/**
 * Sends one attempt of an AMQP publisher (Postoffice's Pub/Sub target, on RabbitMQ): a persistent message to the
 * publisher's exchange (its target), routing key the topic's name, on a confirm channel. The attempt succeeds only
 * when the broker confirms the message, which for a durable queue means it is on disk; a nack, a message returned as
 * unroutable (mandatory: it reached no queue), a lost connection or no confirm within the timeout fail it, and the
 * delivery is retried like an HTTP one. So a broker restart in the middle of a run loses nothing: what was not
 * confirmed is sent again.
 *
 * One connection per node, opened at the first attempt and again after it is lost (the next attempt reconnects).
 */
import amqp from "amqplib";
import type { ChannelModel, ConfirmChannel, Message } from "amqplib";
import { withDefaultHeartbeat } from "../bus/amqp-heartbeat.ts";
import type { SendResult } from "./http-sender.ts";

const CONNECT_TIMEOUT_MS = 5000;

export type AmqpSendRequest = {
  exchange: string;
  routingKey: string;
  body: string;
  /** The message id (the delivery's: stable across retries, a consumer's idempotency key). */
  messageId: string;
  headers: Record<string, unknown>;
  timeoutMs: number;
  signal: AbortSignal;
};

type Link = { connection: ChannelModel; channel: ConfirmChannel; returned: Set<string> };

export class AmqpSender {
  readonly #url: string | null;
  #link: Promise<Link> | null = null;
  #closed = false;

  /** `url`: the broker (null: none configured; every attempt fails saying so). */
  constructor(url: string | null) {
    this.#url = url === null ? null : withDefaultHeartbeat(url);
  }

  async send(request: AmqpSendRequest): Promise<SendResult> {
    const started = performance.now();
    const done = (error: string | null, timedOut = false): SendResult => ({
      status: null,
      durationMs: Math.round(performance.now() - started),
      error,
      timedOut,
      retryAfter: undefined,
      responseBody: null,
    });
    if (this.#url === null) return done("no AMQP broker is configured (CONVEYOR_DISPATCH_AMQP_URL)");
    const timeout = AbortSignal.timeout(request.timeoutMs);
    const signal = AbortSignal.any([timeout, request.signal]);
    try {
      const link = await abortable(this.#connect(), signal);
      await abortable(this.#publish(link, request), signal);
      return done(null);
    } catch (error) {
      if (timeout.aborted) return done(`no confirm within ${request.timeoutMs} ms`, true);
      return done(error instanceof Error ? error.message : String(error));
    }
  }

  #connect(): Promise<Link> {
    if (this.#closed) return Promise.reject(new Error("the AMQP sender is closed"));
    this.#link ??= (async () => {
      const connection = await amqp.connect(this.#url!, {
        timeout: CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: "conveyor-dispatch" },
      });
      const channel = await connection.createConfirmChannel();
      const link: Link = { connection, channel, returned: new Set() };
      // A channel the broker closed (an exchange that does not exist closes it) takes its connection along: the next
      // attempt opens both again.
      const lost = () => {
        if (this.#link === current) this.#link = null;
        connection.close().catch(() => {});
      };
      connection.on("error", lost);
      connection.on("close", lost);
      channel.on("error", lost);
      channel.on("close", lost);
      channel.on("return", (message: Message) => {
        const id = message.properties.messageId;
        if (typeof id === "string") link.returned.add(id);
      });
      return link;
    })();
    const current = this.#link;
    current.catch(() => {
      if (this.#link === current) this.#link = null;
    });
    return current;
  }

  #publish(link: Link, request: AmqpSendRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      const content = Buffer.from(request.body);
      const options = {
        persistent: true,
        mandatory: true,
        contentType: "application/json",
        messageId: request.messageId,
        timestamp: Math.floor(Date.now() / 1000),
        headers: request.headers,
      };
      link.returned.delete(request.messageId);
      try {
        // The broker returns an unroutable message before it confirms it: the confirm then says whether it was.
        link.channel.publish(request.exchange, request.routingKey, content, options, (error: unknown) => {
          if (error !== null && error !== undefined)
            return reject(new Error(`the broker did not confirm: ${String(error)}`));
          if (link.returned.delete(request.messageId))
            return reject(new Error(`no queue is bound to ${request.exchange} for ${request.routingKey}`));
          resolve();
        });
      } catch (error) {
        reject(error);
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const link = this.#link;
    this.#link = null;
    if (link === null) return;
    try {
      const { connection } = await link;
      await connection.close();
    } catch {
      // Already closed or never opened: nothing to release.
    }
  }
}

/** `work`, or a rejection as soon as `signal` aborts. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}
