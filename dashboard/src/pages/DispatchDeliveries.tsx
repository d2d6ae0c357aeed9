/**
 * Failing deliveries (Postoffice's "failing messages", as Svix shows them): deliveries in one state (failed by
 * default; retrying, held, cancelled...), of one publisher or all, newest first, a page at a time; each replayed,
 * retried now (a retrying one) or cancelled here, and a publisher's failures over a window replayed at once. Re-read
 * as dispatch events come.
 */
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { useState } from "react";
import { type DeliveryState, dispatchApi, dispatchKeys, useDispatchCue } from "../dispatch.ts";
import { pluralize } from "../format.ts";
import { useThrottle } from "../live.tsx";
import { Button, Empty, ErrorNote, Panel, Time } from "../ui/kit.tsx";
import { usePublishers } from "./Dispatch.tsx";
import { DeliveryBadge, DispatchTabs, ReplayWindowDialog, StatusBadge } from "./dispatch-parts.tsx";
import { DeliveryActions } from "./DispatchMessages.tsx";

const PAGE = 50;
const STATES: { state: Exclude<DeliveryState, "delivered">; label: string }[] = [
  { state: "failed", label: "Failed" },
  { state: "scheduled", label: "Retrying" },
  { state: "held", label: "Held" },
  { state: "pending", label: "Sending" },
  { state: "cancelled", label: "Cancelled" },
  { state: "discarded", label: "Discarded" },
];

export function DispatchDeliveries() {
  const queryClient = useQueryClient();
  const search = useSearch({ from: "/dispatch/deliveries" });
  const navigate = useNavigate({ from: "/dispatch/deliveries" });
  const state = STATES.some((s) => s.state === search.state) ? search.state! : "failed";
  const publisherId = search.publisher === undefined ? undefined : Number(search.publisher);
  const publishers = usePublishers();
  const publisher = (publishers.data?.publishers ?? []).find((p) => p.id === publisherId) ?? null;
  const key = dispatchKeys.deliveries(state, publisherId);
  const pages = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => dispatchApi.deliveries(state, publisherId, pageParam, PAGE),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const refresh = useThrottle(() => void queryClient.invalidateQueries({ queryKey: key }), 1000);
  useDispatchCue(pages.data?.pages[0]?.position, (events) => {
    if (events.length === 0 || events.some((e) => e.name.startsWith("delivery."))) refresh();
  });
  const [replaying, setReplaying] = useState(false);
  const deliveries = pages.data?.pages.flatMap((p) => p.deliveries) ?? [];
  const label = STATES.find((s) => s.state === state)!.label.toLowerCase();
  return (
    <div className="page page-dispatch">
      <header className="page-head">
        <h1>Deliveries</h1>
        <DispatchTabs />
      </header>
      <div className="panel dispatch-filters deliveries-filters">
        <fieldset className="chips" aria-label="Delivery state">
          {STATES.map((s) => (
            <button
              key={s.state}
              type="button"
              className={`chip${s.state === state ? ` on dchip-${s.state}` : ""}`}
              aria-pressed={s.state === state}
              onClick={() => void navigate({ search: (x) => ({ ...x, state: s.state }) })}
            >
              {s.label}
            </button>
          ))}
        </fieldset>
        <div className="filter-actions">
          <label className="field inline">
            <span>Publisher</span>
            <select
              value={search.publisher ?? ""}
              onChange={(e) => void navigate({ search: (x) => ({ ...x, publisher: e.target.value || undefined }) })}
            >
              <option value="">all</option>
              {(publishers.data?.publishers ?? []).map((p) => (
                <option key={p.id} value={String(p.id)}>
                  {p.topic} → {p.target}
                </option>
              ))}
            </select>
          </label>
          {publisher !== null ? (
            <Button onClick={() => setReplaying(true)} label={`Replay a window of publisher ${publisher.id}`}>
              Replay a window…
            </Button>
          ) : null}
        </div>
      </div>
      <Panel
        title={`${STATES.find((s) => s.state === state)!.label}${publisher ? ` · ${publisher.target}` : ""}`}
        actions={<span className="muted small">{pluralize(deliveries.length, "delivery", "deliveries")} shown</span>}
      >
        <ErrorNote error={pages.error} />
        {deliveries.length === 0 ? (
          <Empty>{pages.isPending ? "Loading…" : `No ${label} delivery.`}</Empty>
        ) : (
          <ul className="delivery-list">
            {deliveries.map((delivery) => (
              <li key={delivery.id} data-delivery={delivery.id}>
                <div className="dl-main">
                  <DeliveryBadge state={delivery.state} />
                  <Link to="/dispatch/messages/$id" params={{ id: String(delivery.message_id) }} className="num">
                    Message #{delivery.message_id}
                  </Link>
                  <span className="mono small delivery-target" title={delivery.publisher.target}>
                    {delivery.publisher.target}
                  </span>
                </div>
                <div className="dl-detail small">
                  {delivery.attempts > 0 ? <StatusBadge status={delivery.last_status} /> : null}
                  <span className="dl-error" title={delivery.last_error ?? undefined}>
                    {delivery.last_error ?? (delivery.attempts === 0 ? "not tried yet" : "")}
                  </span>
                  <span className="muted">
                    {pluralize(delivery.attempts, "attempt")} ·{" "}
                    {delivery.state === "scheduled" && delivery.next_attempt_at ? (
                      <Time at={delivery.next_attempt_at} prefix="next " />
                    ) : (
                      <Time at={delivery.updated_at} />
                    )}
                  </span>
                </div>
                <div className="dl-actions">
                  <DeliveryActions delivery={delivery} onDone={refresh} />
                </div>
              </li>
            ))}
          </ul>
        )}
        {pages.hasNextPage ? (
          <div className="load-more">
            <Button onClick={() => void pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
              {pages.isFetchingNextPage ? "Loading…" : "Load more"}
            </Button>
          </div>
        ) : null}
      </Panel>
      <ReplayWindowDialog publisher={publisher} open={replaying} onClose={() => setReplaying(false)} />
    </div>
  );
}
