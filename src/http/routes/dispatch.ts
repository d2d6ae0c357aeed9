/**
 * What Postoffice's API lacked, in Conveyor's own style (errors `{error: {code, message}}`, docs/errors.md; fields in
 * Postoffice's snake_case): topics and publishers listed, read and changed (enable, disable, retarget, rotate a
 * secret), message search with cursor pages, a message's deliveries and every attempt, failing deliveries, a replay,
 * a retry now or a cancel of one, the replay of a publisher's failures over a window, and the deliveries counted per
 * state (capped: a count costs the same on a table of any size). Lists answer the log `position` they
 * are consistent with, so that a page can follow `dispatch` / `topic:<name>` from there.
 */
import type { FastifyInstance } from "fastify";
import { Dispatch } from "../../dispatch/dispatch.ts";
import type { Conveyor } from "../../runtime/conveyor.ts";
import type { DeliveryState } from "../../store/dispatch-store.ts";
import { COUNT_LIMIT } from "../../dispatch/deliveries.ts";
import { errorReplies } from "../schemas.ts";
import { deliveryJson, messageJson, publisherJson, topicJson } from "../dispatch-json.ts";
import {
  countsQuery,
  countsReply,
  deliveriesQuery,
  idParams,
  messagesQuery,
  publisherPatch,
  publishersQuery,
  replayBody,
  rotateBody,
  topicParams,
  topicPatch,
} from "../dispatch-schemas.ts";

const tags = ["dispatch"];

type IdRoute = { Params: { id: number } };

export function registerDispatchRoutes(app: FastifyInstance, { conveyor }: { conveyor: Conveyor }): void {
  const dispatch = Dispatch.of(conveyor);
  const topicOf = (text: string) => dispatch.topic(/^[0-9]{1,15}$/.test(text) ? Number(text) : text);

  app.get("/api/topics", { schema: { summary: "Topics", tags } }, async () => ({
    topics: (await dispatch.topics()).map(topicJson),
    position: await conveyor.live.position(),
  }));

  app.get<{ Params: { topic: string } }>(
    "/api/topics/:topic",
    { schema: { summary: "A topic, by id or name", tags, params: topicParams } },
    async (request) => ({ topic: topicJson(await topicOf(request.params.topic)) }),
  );

  app.patch<{ Params: { topic: string }; Body: { origin_host?: string; recovery_enabled?: boolean } }>(
    "/api/topics/:topic",
    { schema: { summary: "Change a topic's origin host or recovery", tags, params: topicParams, body: topicPatch } },
    async (request) => {
      const topic = await topicOf(request.params.topic);
      const { origin_host: originHost, recovery_enabled: recoveryEnabled } = request.body;
      return { topic: topicJson(await dispatch.updateTopic(topic.id, { originHost, recoveryEnabled })) };
    },
  );

  app.get<{ Querystring: { topic?: string; deleted?: string } }>(
    "/api/publishers",
    { schema: { summary: "Publishers, of one topic or all", tags, querystring: publishersQuery } },
    async (request) => {
      const { topic, deleted } = request.query;
      const list = await dispatch.publishers({ topic, includeDeleted: deleted === "true" });
      return { publishers: list.map(publisherJson), position: await conveyor.live.position() };
    },
  );

  app.get<IdRoute>(
    "/api/publishers/:id",
    { schema: { summary: "A publisher", tags, params: idParams } },
    async (request) => ({
      publisher: publisherJson(await dispatch.publisher(request.params.id)),
    }),
  );

  app.get<IdRoute>(
    "/api/publishers/:id/secret",
    { schema: { summary: "A publisher's current signing secret (null: it does not sign)", tags, params: idParams } },
    async (request) => ({ secret: (await dispatch.publisher(request.params.id)).secrets[0]?.secret ?? null }),
  );

  app.patch<IdRoute & { Body: Record<string, unknown> }>(
    "/api/publishers/:id",
    {
      schema: {
        summary: "Change a publisher: enable (its held deliveries go out), disable (they wait), retarget, retry policy",
        tags,
        params: idParams,
        body: publisherPatch,
      },
    },
    async (request) => ({ publisher: publisherJson(await dispatch.updatePublisher(request.params.id, request.body)) }),
  );

  app.post<IdRoute & { Body: { secret?: string } | null }>(
    "/api/publishers/:id/rotate-secret",
    {
      schema: {
        summary: "Sign with a new secret; the old one keeps signing beside it for a day",
        tags,
        params: idParams,
        body: rotateBody,
      },
    },
    async (request) => {
      const { publisher, secret } = await dispatch.rotateSecret(request.params.id, request.body?.secret);
      return { publisher: publisherJson(publisher), secret };
    },
  );

  app.post<IdRoute & { Body: { since: string; until?: string } }>(
    "/api/publishers/:id/replay",
    {
      schema: {
        summary: "Send again the publisher's failed and cancelled deliveries of messages received in [since, until)",
        tags,
        params: idParams,
        body: replayBody,
      },
    },
    async (request) => {
      const { since, until } = request.body;
      const to = until === undefined ? new Date() : new Date(until);
      return dispatch.replay(request.params.id, { from: new Date(since), to });
    },
  );

  app.get<{ Querystring: Record<string, string | number | undefined> }>(
    "/api/messages",
    { schema: { summary: "Search messages, newest first, a page at a time", tags, querystring: messagesQuery } },
    async (request) => {
      const q = request.query;
      const position = await conveyor.live.position();
      const attribute = typeof q.attribute === "string" ? q.attribute : undefined;
      const page = await dispatch.searchMessages({
        topic: q.topic as string | undefined,
        attribute:
          attribute === undefined
            ? undefined
            : { key: attribute.slice(0, attribute.indexOf("=")), value: attribute.slice(attribute.indexOf("=") + 1) },
        text: q.q as string | undefined,
        from: q.from === undefined ? undefined : new Date(q.from),
        to: q.to === undefined ? undefined : new Date(q.to),
        state: q.state as DeliveryState | undefined,
        cursor: q.cursor as string | undefined,
        limit: q.limit as number | undefined,
      });
      return { messages: page.messages.map(messageJson), next_cursor: page.nextCursor, position };
    },
  );

  app.get<IdRoute>(
    "/api/messages/:id",
    { schema: { summary: "A message with every delivery and attempt", tags, params: idParams } },
    async (request) => {
      // The position first: what changes after it is in the events a page follows from there.
      const position = await conveyor.live.position();
      const { message, deliveries } = await dispatch.message(request.params.id);
      return { message: messageJson(message), deliveries: deliveries.map(deliveryJson), position };
    },
  );

  app.get<{
    Querystring: { state: Exclude<DeliveryState, "delivered">; publisher?: number; cursor?: string; limit?: number };
  }>(
    "/api/deliveries",
    {
      schema: {
        summary: "Deliveries in one state (failed, scheduled...), newest first",
        tags,
        querystring: deliveriesQuery,
      },
    },
    async (request) => {
      const position = await conveyor.live.position();
      const page = await dispatch.deliveries(request.query);
      return { deliveries: page.deliveries.map(deliveryJson), next_cursor: page.nextCursor, position };
    },
  );

  app.get<IdRoute>(
    "/api/deliveries/:id",
    { schema: { summary: "A delivery with its attempts", tags, params: idParams } },
    async (request) => ({ delivery: deliveryJson(await dispatch.delivery(request.params.id)) }),
  );

  app.post<IdRoute>(
    "/api/deliveries/:id/replay",
    {
      schema: {
        summary: "Replay a failed or cancelled delivery: send it again, from the start of its schedule",
        tags,
        params: idParams,
      },
    },
    async (request) => ({ delivery: deliveryJson(await dispatch.replayDelivery(request.params.id)) }),
  );

  app.post<IdRoute>(
    "/api/deliveries/:id/retry",
    {
      schema: {
        summary:
          "Retry now a delivery waiting for its next attempt (scheduled): sent at once, no attempt spent, its retry schedule kept",
        tags,
        params: idParams,
      },
    },
    async (request) => ({ delivery: deliveryJson(await dispatch.retryDeliveryNow(request.params.id)) }),
  );

  app.get<{ Querystring: { publishers?: string } }>(
    "/api/dispatch/counts",
    {
      schema: {
        summary: `Deliveries per state (all but delivered), overall and per publisher, each counted up to ${COUNT_LIMIT}`,
        tags,
        querystring: countsQuery,
        response: { 200: countsReply, ...errorReplies },
      },
    },
    async (request) => {
      const position = await conveyor.live.position();
      const counts = await dispatch.deliveryCounts({ byPublisher: request.query.publishers === "true" });
      return {
        limit: COUNT_LIMIT,
        deliveries: counts.states,
        publishers: counts.publishers.map((p) => ({ id: p.id, deliveries: p.states })),
        position,
      };
    },
  );

  app.post<IdRoute>(
    "/api/deliveries/:id/cancel",
    { schema: { summary: "Cancel a delivery that has not finished", tags, params: idParams } },
    async (request) => ({ delivery: deliveryJson(await dispatch.cancelDelivery(request.params.id)) }),
  );
}
