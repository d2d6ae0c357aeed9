/**
 * Tasks: a virtualised list, newest first, filtered by state, queue, type, key and creation time (all in the URL),
 * loaded a page at a time as it scrolls. Rows change in place as their events come (state, attempt, node, progress
 * with its rate and ETA); tasks created since the list was loaded are counted ("12 new") rather than pushed in, so
 * nothing moves under the pointer. Rows can be selected one by one, or "all matching", for stop / rerun / delete.
 */
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { useVirtualizer } from "@tanstack/react-virtual";
import {
  type CSSProperties,
  type FormEvent,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { api, type TaskFilter } from "../api.ts";
import { useAuth } from "../auth.tsx";
import { useCountsLive, useNodeName, useQueues } from "../data.ts";
import { formatCompact, formatDuration, formatNumber, pluralize } from "../format.ts";
import { type LiveEvent, useLive } from "../live.tsx";
import type { TaskSearch } from "../search.ts";
import { applyEvent, type LiveTask, progressRate, recordProgress } from "../tasks-live.ts";
import { type BulkAction, type BulkFilter, TASK_STATES, type TaskState } from "../types.ts";
import { Button, Empty, ErrorNote, ProgressBar, StateBadge, Time } from "../ui/kit.tsx";
import { ACTION_LABEL, BulkDialog, type BulkTarget } from "./bulk.tsx";

const PAGE_SIZE = 100;
const ROW_HEIGHT = 44;
/**
 * A filter no index serves is answered a stretch of ids at a time, and a stretch may hold no match (a rare type in
 * a million tasks): the list asks for the next one by itself, up to this many empty stretches in a row, then
 * offers to search further rather than walk the whole table unasked.
 */
const EMPTY_STRETCHES_UNASKED = 25;

function filterOf(search: TaskSearch): TaskFilter {
  const states = (search.state ?? "")
    .split(",")
    .filter((s): s is TaskState => (TASK_STATES as readonly string[]).includes(s));
  return {
    state: states.length > 0 ? states : undefined,
    queue: search.queue,
    type: search.type,
    key: search.key,
    createdAfter: toIso(search.from),
    createdBefore: toIso(search.to),
  };
}

function toIso(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Whether a task.created event belongs in the list; null when the event cannot tell (a key filter). */
function matches(filter: TaskFilter, event: LiveEvent): boolean | null {
  const data = (event.data ?? {}) as { type?: string; state?: string };
  if (filter.queue !== undefined && event.queue !== filter.queue) return false;
  if (filter.type !== undefined && data.type !== filter.type) return false;
  if (filter.state !== undefined && !filter.state.includes(data.state as TaskState)) return false;
  if (filter.createdAfter !== undefined && event.at < filter.createdAfter) return false;
  if (filter.createdBefore !== undefined && event.at >= filter.createdBefore) return false;
  if (filter.key !== undefined) return null;
  return true;
}

function channelOf(filter: TaskFilter): string {
  if (filter.type !== undefined) return `type:${filter.type}`;
  if (filter.queue !== undefined) return `queue:${filter.queue}`;
  return "tasks";
}

export function Tasks() {
  const search = useSearch({ from: "/tasks" });
  const navigate = useNavigate({ from: "/tasks" });
  const filter = useMemo(() => filterOf(search), [search]);
  const queryClient = useQueryClient();
  const auth = useAuth();
  const queryKey = useMemo(() => ["tasks", filter] as const, [filter]);

  const list = useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam, signal }) => api.tasks(filter, pageParam, PAGE_SIZE, signal),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const pages = list.data?.pages;
  const first = pages?.[0];

  // Live patches over the loaded rows, and the tasks created since the first page.
  const patches = useRef(new Map<number, LiveTask>());
  const [version, setVersion] = useState(0);
  const [fresh, setFresh] = useState<{ sure: number; maybe: number }>({ sure: 0, maybe: 0 });
  const firstPosition = first?.position;
  // A new first page starts the patches and the count of new tasks afresh.
  useEffect(() => {
    void firstPosition;
    patches.current.clear();
    setFresh({ sure: 0, maybe: 0 });
  }, [firstPosition]);

  const rows = useMemo(() => {
    const out: LiveTask[] = [];
    for (const page of pages ?? []) {
      for (const task of page.tasks) {
        const base: LiveTask = { ...task, at: page.position.offset };
        const patched = patches.current.get(task.id);
        out.push(patched !== undefined && patched.at > base.at ? patched : base);
      }
    }
    void version; // the patches changed
    return out;
  }, [pages, version]);
  const index = useMemo(() => new Map(rows.map((row, i) => [row.id, i])), [rows]);

  useLive(first === undefined ? null : [channelOf(filter)], {
    since: firstPosition ?? null,
    onEvents: (events) => {
      let changed = false;
      let sure = 0;
      let maybe = 0;
      for (const event of events) {
        recordProgress(event);
        if (event.taskId === undefined) continue;
        if (event.name === "task.created") {
          const match = matches(filter, event);
          if (match === true) sure++;
          else if (match === null) maybe++;
          continue;
        }
        const i = index.get(event.taskId);
        if (i === undefined) continue;
        const current = patches.current.get(event.taskId) ?? rows[i]!;
        const next = applyEvent(current, event);
        if (next !== current) {
          patches.current.set(event.taskId, next);
          changed = true;
        }
      }
      if (changed) setVersion((v) => v + 1);
      if (sure + maybe > 0) setFresh((f) => ({ sure: f.sure + sure, maybe: f.maybe + maybe }));
    },
    onReload: () => void queryClient.resetQueries({ queryKey }),
  });

  const showNew = () => void queryClient.resetQueries({ queryKey });

  // ---- selection ----
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  const [action, setAction] = useState<BulkAction | null>(null);
  // A new filter is a new selection.
  useEffect(() => {
    void filter;
    setSelected(new Set());
    setAllMatching(false);
  }, [filter]);
  const toggle = useCallback((id: number) => {
    setAllMatching(false);
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }, []);
  const allLoadedSelected = rows.length > 0 && rows.every((r) => selected.has(r.id));
  const toggleAll = () => {
    setAllMatching(false);
    setSelected(allLoadedSelected ? new Set() : new Set(rows.map((r) => r.id)));
  };
  useCountsLive();
  const queues = useQueues();
  const nodeName = useNodeName();
  // Counts per state from the counts table, for the state chips (only where they say the truth: no type, key or
  // time filter, which the table does not count by).
  const stateCounts = useMemo(() => {
    if (queues.data === undefined || filter.type !== undefined || filter.key !== undefined) return null;
    if (filter.createdAfter !== undefined || filter.createdBefore !== undefined) return null;
    const sum = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const q of queues.data.queues)
      if (filter.queue === undefined || q.queue === filter.queue) for (const s of TASK_STATES) sum[s] += q.counts[s];
    return sum;
  }, [queues.data, filter]);
  const estimate = useMemo(() => {
    const stats = queues.data?.queues.filter((q) => filter.queue === undefined || q.queue === filter.queue);
    if (stats === undefined || filter.type !== undefined || filter.key !== undefined) return null;
    if (filter.createdAfter !== undefined || filter.createdBefore !== undefined) return null;
    const states: readonly TaskState[] = filter.state ?? TASK_STATES;
    let sum = 0;
    for (const q of stats) for (const state of states) sum += q.counts[state];
    return sum;
  }, [queues.data, filter]);
  const target: BulkTarget = allMatching
    ? { kind: "filter", filter: bulkFilter(filter), estimate }
    : { kind: "ids", ids: [...selected] };

  // ---- the virtual list ----
  const scroller = useRef<HTMLTableSectionElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastItem = items[items.length - 1];
  // Empty pages at the end of what is loaded: stretches searched since the last match.
  const emptyTail = useMemo(() => {
    let count = 0;
    for (let i = (pages?.length ?? 0) - 1; i >= 0 && pages![i]!.tasks.length === 0; i--) count++;
    return count;
  }, [pages]);
  const [emptyBudget, setEmptyBudget] = useState(EMPTY_STRETCHES_UNASKED);
  useEffect(() => {
    void filter;
    setEmptyBudget(EMPTY_STRETCHES_UNASKED);
  }, [filter]);
  const searchPaused = list.hasNextPage && emptyTail >= emptyBudget;
  const searchFurther = () => setEmptyBudget(emptyTail + EMPTY_STRETCHES_UNASKED);
  const searchedBelow = pages?.at(-1)?.nextCursor ?? null;
  useEffect(() => {
    const nearEnd = lastItem === undefined || lastItem.index >= rows.length - 20;
    if (list.isSuccess && nearEnd && list.hasNextPage && !list.isFetchingNextPage && !searchPaused)
      void list.fetchNextPage();
  }, [lastItem, rows.length, list, searchPaused]);

  // ---- keyboard: j / k / Enter / x ----
  const [cursor, setCursor] = useState(-1);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (event.metaKey || event.ctrlKey || event.altKey) return;
      if (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || document.querySelector("dialog[open]")) return;
      if (event.key === "j" || event.key === "k") {
        event.preventDefault();
        setCursor((c) => {
          const next = Math.max(0, Math.min(rows.length - 1, c + (event.key === "j" ? 1 : -1)));
          virtualizer.scrollToIndex(next, { align: "auto" });
          return next;
        });
      } else if (event.key === "Enter" && cursor >= 0 && rows[cursor] !== undefined) {
        void navigate({ to: "/tasks/$id", params: { id: String(rows[cursor].id) } });
      } else if (event.key === "x" && cursor >= 0 && rows[cursor] !== undefined && auth.canWrite) {
        toggle(rows[cursor].id);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [rows, cursor, navigate, toggle, virtualizer, auth.canWrite]);

  const setSearch = (patch: Partial<TaskSearch>) =>
    void navigate({ search: (prev: TaskSearch) => ({ ...prev, ...patch, focus: undefined }), replace: true });

  const newCount = fresh.sure + fresh.maybe;
  return (
    <div className="page page-tasks">
      <header className="page-head">
        <h1>Tasks</h1>
        <FindById autoFocus={search.focus === "1"} />
      </header>
      <Filters
        search={search}
        setSearch={setSearch}
        queueNames={queues.data?.queues.map((q) => q.queue) ?? []}
        counts={stateCounts}
      />
      <div className="toolbar" aria-live="polite">
        {auth.canWrite ? (
          <div className="selection">
            {selected.size > 0 || allMatching ? (
              <>
                <span>
                  {allMatching
                    ? `All matching${estimate === null ? "" : ` (≈ ${formatNumber(estimate)})`}`
                    : `${formatNumber(selected.size)} selected`}
                </span>
                {!allMatching && allLoadedSelected ? (
                  <button type="button" className="link" onClick={() => setAllMatching(true)}>
                    Select all matching
                  </button>
                ) : null}
                {(auth.canAdmin ? (["cancel", "rerun", "delete"] as const) : (["cancel", "rerun"] as const)).map(
                  (a) => (
                    <Button key={a} small tone={a === "rerun" ? "default" : "danger"} onClick={() => setAction(a)}>
                      {ACTION_LABEL[a].verb}
                    </Button>
                  ),
                )}
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    setSelected(new Set());
                    setAllMatching(false);
                  }}
                >
                  Clear
                </button>
              </>
            ) : (
              <span className="muted small">Select rows to stop, rerun or delete them.</span>
            )}
          </div>
        ) : (
          <span />
        )}
        <div className="toolbar-right">
          {newCount > 0 ? (
            <button type="button" className="new-pill" onClick={showNew}>
              {fresh.sure > 0 ? `${formatNumber(fresh.sure)} new` : ""}
              {fresh.sure > 0 && fresh.maybe > 0 ? " · " : ""}
              {fresh.maybe > 0 ? `${formatNumber(fresh.maybe)} may match` : ""} — show
            </button>
          ) : null}
          <span className="muted small" aria-live="polite">
            {list.isSuccess
              ? `${formatNumber(rows.length)}${list.hasNextPage ? "+" : ""} ${rows.length === 1 ? "task" : "tasks"}`
              : ""}
            {list.isFetchingNextPage && searchedBelow !== null ? ` · searching below #${searchedBelow}` : ""}
          </span>
          {searchPaused && rows.length > 0 ? (
            <Button onClick={searchFurther}>Search below #{searchedBelow}</Button>
          ) : null}
        </div>
      </div>
      <ErrorNote error={list.error} />
      <table className="table tasks-table" aria-label="Tasks" aria-rowcount={rows.length + 1}>
        <thead className="thead">
          <tr className="tr">
            {auth.canWrite ? (
              <th className="td col-check" scope="col">
                <input
                  type="checkbox"
                  aria-label="Select all loaded rows"
                  checked={allLoadedSelected}
                  onChange={toggleAll}
                />
              </th>
            ) : null}
            <th className="td col-id" scope="col">
              ID
            </th>
            <th className="td col-type" scope="col">
              Type
            </th>
            <th className="td col-queue" scope="col">
              Queue
            </th>
            <th className="td col-state" scope="col">
              State
            </th>
            <th className="td col-progress" scope="col">
              Progress
            </th>
            <th className="td col-attempt" scope="col">
              Attempt
            </th>
            <th className="td col-node" scope="col">
              Node
            </th>
            <th className="td col-time" scope="col">
              Created
            </th>
          </tr>
        </thead>
        <tbody
          className="tbody"
          ref={scroller}
          style={{ "--total": `${virtualizer.getTotalSize()}px` } as CSSProperties}
        >
          {list.isPending ? (
            <tr className="tr-message">
              <td className="skeleton-rows" aria-busy="true" />
            </tr>
          ) : rows.length === 0 && list.hasNextPage ? (
            <tr className="tr-message">
              <td>
                <Empty>
                  {searchPaused ? (
                    <>
                      No match among the newer tasks.{" "}
                      <Button onClick={searchFurther}>Search below #{searchedBelow}</Button>
                    </>
                  ) : (
                    `Searching… below #${searchedBelow}`
                  )}
                </Empty>
              </td>
            </tr>
          ) : rows.length === 0 ? (
            <tr className="tr-message">
              <td>
                <Empty>
                  No task matches{Object.values(filter).some((v) => v !== undefined) ? " these filters" : " yet"}.
                </Empty>
              </td>
            </tr>
          ) : (
            items.map((item) => {
              const task = rows[item.index]!;
              return (
                <Row
                  key={task.id}
                  nodeName={nodeName(task.node)}
                  task={task}
                  top={item.start}
                  index={item.index}
                  selected={allMatching || selected.has(task.id)}
                  cursor={cursor === item.index}
                  onToggle={auth.canWrite ? toggle : null}
                />
              );
            })
          )}
        </tbody>
      </table>
      <BulkDialog
        action={action}
        target={target}
        onClose={() => setAction(null)}
        onDone={() => {
          setSelected(new Set());
          setAllMatching(false);
          void queryClient.invalidateQueries({ queryKey: ["queues"] });
        }}
      />
    </div>
  );
}

function bulkFilter(filter: TaskFilter): BulkFilter {
  const out: BulkFilter = {};
  if (filter.queue !== undefined) out.queue = filter.queue;
  if (filter.state !== undefined) out.state = filter.state;
  if (filter.type !== undefined) out.type = filter.type;
  if (filter.key !== undefined) out.key = filter.key;
  if (filter.createdAfter !== undefined) out.createdAfter = filter.createdAfter;
  if (filter.createdBefore !== undefined) out.createdBefore = filter.createdBefore;
  return out;
}

function Row({
  task,
  nodeName,
  top,
  index,
  selected,
  cursor,
  onToggle,
}: {
  task: LiveTask;
  nodeName: string | null;
  top: number;
  index: number;
  selected: boolean;
  cursor: boolean;
  onToggle: ((id: number) => void) | null;
}) {
  const percent = task.progress?.percent ?? null;
  const speed = task.state === "running" && percent !== null ? progressRate(task.id, percent) : null;
  return (
    <tr
      className={`tr${selected ? " selected" : ""}${cursor ? " cursor" : ""}${task.deleted ? " gone" : ""}`}
      aria-rowindex={index + 2}
      data-task={task.id}
      data-state={task.state}
      style={{ transform: `translateY(${top}px)`, height: ROW_HEIGHT }}
    >
      {onToggle === null ? null : (
        <td className="td col-check">
          <input
            type="checkbox"
            aria-label={`Select task ${task.id}`}
            checked={selected}
            onChange={() => onToggle(task.id)}
          />
        </td>
      )}
      <td className="td col-id num">
        <Link to="/tasks/$id" params={{ id: String(task.id) }} className="row-link">
          #{task.id}
        </Link>
      </td>
      <td className="td col-type" title={task.key === null ? task.type : `${task.type} · key ${task.key}`}>
        {task.type}
      </td>
      <td className="td col-queue">{task.queue}</td>
      <td className="td col-state">
        <StateBadge state={task.deleted ? "deleted" : task.state} />
      </td>
      <td className="td col-progress">
        {task.state === "running" ? (
          percent === null ? (
            <span className="muted small">running</span>
          ) : (
            <ProgressBar
              compact
              percent={percent}
              rate={speed?.rate ?? null}
              eta={speed?.eta ?? null}
              label={`Task ${task.id} progress`}
            />
          )
        ) : task.state === "scheduled" ? (
          <span className="muted small">
            <Time at={task.runAt} prefix="runs " />
          </span>
        ) : task.finishedAt !== null && task.startedAt !== null ? (
          <span className="muted small">
            took {formatDuration(Date.parse(task.finishedAt) - Date.parse(task.startedAt))}
          </span>
        ) : null}
      </td>
      <td className="td col-attempt num">
        {task.attempt}/{task.maxAttempts}
      </td>
      <td className="td col-node" title={task.node ?? undefined}>
        {nodeName ?? <span className="muted">—</span>}
      </td>
      <td className="td col-time">
        <Time at={task.createdAt} />
      </td>
    </tr>
  );
}

function FindById({ autoFocus }: { autoFocus: boolean }) {
  const navigate = useNavigate();
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (autoFocus) input.current?.focus();
  }, [autoFocus]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const id = Number(value.trim().replace(/^#/, ""));
    if (!Number.isSafeInteger(id) || id <= 0) {
      setProblem("A task id is a whole number");
      return;
    }
    setProblem(null);
    void navigate({ to: "/tasks/$id", params: { id: String(id) } });
  };
  return (
    <form className="find" onSubmit={submit}>
      <input
        ref={input}
        data-search
        type="search"
        inputMode="numeric"
        placeholder="Find task by id  /"
        aria-label="Find a task by id"
        value={value}
        onChange={(event) => setValue(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === "Escape") (event.target as HTMLInputElement).blur();
        }}
        aria-invalid={problem !== null}
        title={problem ?? undefined}
      />
    </form>
  );
}

function useMedia(query: string): boolean {
  const media = useMemo(() => window.matchMedia(query), [query]);
  return useSyncExternalStore(
    (listener) => {
      media.addEventListener("change", listener);
      return () => media.removeEventListener("change", listener);
    },
    () => media.matches,
  );
}

const RANGES: [string, number][] = [
  ["15 min", 15 * 60_000],
  ["1 h", 3_600_000],
  ["24 h", 86_400_000],
];

function localInput(iso: string | undefined): string {
  if (iso === undefined) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const offset = date.getTimezoneOffset() * 60_000;
  return new Date(date.getTime() - offset).toISOString().slice(0, 16);
}

function Filters({
  search,
  setSearch,
  queueNames,
  counts,
}: {
  search: TaskSearch;
  setSearch: (patch: Partial<TaskSearch>) => void;
  queueNames: string[];
  counts: Record<TaskState, number> | null;
}) {
  const states = new Set((search.state ?? "").split(",").filter(Boolean));
  const toggleState = (state: string) => {
    const next = new Set(states);
    if (next.has(state)) next.delete(state);
    else next.add(state);
    setSearch({ state: [...next].join(",") || undefined });
  };
  const [type, setType] = useState(search.type ?? "");
  const [key, setKey] = useState(search.key ?? "");
  useEffect(() => setType(search.type ?? ""), [search.type]);
  useEffect(() => setKey(search.key ?? ""), [search.key]);
  const any = Object.entries(search).some(([name, value]) => name !== "focus" && value !== undefined);
  // On a phone the fields beyond the states fold away, so that the list keeps the screen.
  const narrow = useMedia("(max-width: 900px)");
  const fieldsSet = [search.queue, search.type, search.key, search.from, search.to].filter(
    (v) => v !== undefined,
  ).length;
  const [open, setOpen] = useState(false);
  const showFields = !narrow || open || fieldsSet > 0;
  return (
    <div className="filters">
      <fieldset className="chips" aria-label="States">
        <legend className="sr-only">States</legend>
        {TASK_STATES.map((state) => (
          <button
            key={state}
            type="button"
            className={`chip state-${state}${states.has(state) ? " on" : ""}`}
            aria-pressed={states.has(state)}
            onClick={() => toggleState(state)}
          >
            {state}
            {counts === null ? null : <span className="chip-count num">{formatCompact(counts[state])}</span>}
          </button>
        ))}
      </fieldset>
      {narrow ? (
        <button
          type="button"
          className="link small filter-toggle"
          aria-expanded={showFields}
          onClick={() => setOpen(!showFields)}
        >
          {showFields ? "Fewer filters" : `More filters${fieldsSet > 0 ? ` (${fieldsSet} set)` : ""}`}
        </button>
      ) : null}
      <div className="filter-fields" hidden={!showFields}>
        <label className="field inline">
          <span>Queue</span>
          <select
            value={search.queue ?? ""}
            onChange={(event) => setSearch({ queue: event.target.value || undefined })}
          >
            <option value="">any</option>
            {[...new Set([...queueNames, ...(search.queue ? [search.queue] : [])])].map((q) => (
              <option key={q} value={q}>
                {q}
              </option>
            ))}
          </select>
        </label>
        <form
          className="field inline"
          onSubmit={(event) => {
            event.preventDefault();
            setSearch({ type: type.trim() || undefined });
          }}
        >
          <label htmlFor="filter-type">Type</label>
          <input
            id="filter-type"
            value={type}
            placeholder="any"
            onChange={(event) => setType(event.target.value)}
            onBlur={() => setSearch({ type: type.trim() || undefined })}
          />
        </form>
        <form
          className="field inline"
          onSubmit={(event) => {
            event.preventDefault();
            setSearch({ key: key.trim() || undefined });
          }}
        >
          <label htmlFor="filter-key">Key</label>
          <input
            id="filter-key"
            value={key}
            placeholder="any"
            onChange={(event) => setKey(event.target.value)}
            onBlur={() => setSearch({ key: key.trim() || undefined })}
          />
        </form>
        <label className="field inline">
          <span>From</span>
          <input
            type="datetime-local"
            value={localInput(search.from)}
            onChange={(event) =>
              setSearch({ from: event.target.value ? new Date(event.target.value).toISOString() : undefined })
            }
          />
        </label>
        <label className="field inline">
          <span>To</span>
          <input
            type="datetime-local"
            value={localInput(search.to)}
            onChange={(event) =>
              setSearch({ to: event.target.value ? new Date(event.target.value).toISOString() : undefined })
            }
          />
        </label>
        <fieldset className="ranges">
          <legend className="sr-only">Created within</legend>
          {RANGES.map(([label, ms]) => (
            <button
              key={label}
              type="button"
              className="chip"
              onClick={() => setSearch({ from: new Date(Date.now() - ms).toISOString(), to: undefined })}
            >
              {label}
            </button>
          ))}
        </fieldset>
        {any ? (
          <button
            type="button"
            className="link"
            onClick={() =>
              setSearch({
                state: undefined,
                queue: undefined,
                type: undefined,
                key: undefined,
                from: undefined,
                to: undefined,
              })
            }
          >
            Clear filters
          </button>
        ) : null}
      </div>
      <p className="sr-only" aria-live="polite">
        {pluralize(states.size, "state")} selected
      </p>
    </div>
  );
}
