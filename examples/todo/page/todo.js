/**
 * Components.Todo: the seed's React page (add, toggle, rename, delete; live), on the official Phoenix client.
 *
 * The seed's page changed only when the channel's `event` came back and never heard a reply. This one joins
 * `todo_events` with `since`: the log position its list goes with (from the page's props, then from every change).
 * The server answers with the changes it missed (`change` frames, each with its offset), or with the list itself
 * when it cannot; so a page whose socket dropped, or that rejoins another instance, catches up on exactly what it
 * missed. Every push is answered: a change is shown as pending until then, and a refusal says why.
 */
import { Socket } from "phoenix";
import { createElement as h, useEffect, useRef, useState } from "react";

/** A worker refuses a change the engine has not taken within 60 s: wait a little longer for its answer. */
const PUSH_TIMEOUT_MS = 70_000;

function applyEvent(items, { type, data }) {
  if (type === "insert") {
    return items.some((item) => item.id === data.id)
      ? items.map((item) => (item.id === data.id ? data : item))
      : [...items, data];
  }
  if (type === "update") return items.map((item) => (item.id === data.id ? { ...item, ...data } : item));
  if (type === "delete") return items.filter((item) => item.id !== data.id);
  return items;
}

function useTodoChannel(initialItems, initialPosition) {
  const position = useRef(initialPosition ?? null);
  const channelRef = useRef(null);
  const [items, setItems] = useState(initialItems ?? []);
  const [status, setStatus] = useState("connecting");

  useEffect(() => {
    const socket = new Socket("/socket", {
      reconnectAfterMs: (tries) => [200, 500, 1000, 2000][tries - 1] ?? 3000,
      rejoinAfterMs: (tries) => [300, 1000, 2000][tries - 1] ?? 4000,
    });
    socket.connect();
    const channel = socket.channel("todo_events", () => ({ since: position.current }));
    channelRef.current = channel;
    channel.on("change", ({ offset, type, data }) => {
      if (offset !== null && position.current !== null && offset <= position.current.offset) return;
      if (offset !== null && position.current !== null) position.current = { ...position.current, offset };
      setItems((current) => applyEvent(current, { type, data }));
    });
    channel.on("snapshot", (snapshot) => {
      position.current = snapshot.position;
      setItems(snapshot.items);
    });
    channel.onError(() => setStatus("offline"));
    channel
      .join()
      // Phoenix sends the join again (with the `since` of that moment) after every reconnection; these run each time.
      .receive("ok", (response) => {
        if (response.resumed === false) {
          position.current = response.position;
          setItems(response.items);
        }
        setStatus("live");
      })
      .receive("error", () => setStatus("offline"));
    // For tests and the curious: the socket and the position.
    window.ztd = { socket, channel, position: () => position.current };
    return () => socket.disconnect();
  }, []);

  return { items, status, channel: channelRef };
}

function push(channel, event, data) {
  return new Promise((resolve) => {
    const current = channel.current;
    if (current === null) return resolve({ status: "error", message: "not connected" });
    current
      .push(event, { data }, PUSH_TIMEOUT_MS)
      .receive("ok", () => resolve({ status: "ok" }))
      .receive("error", (response) => resolve({ status: "error", message: response?.message ?? response?.reason }))
      .receive("timeout", () =>
        resolve({ status: "timeout", message: "No answer yet: the change shows up here if it is applied." }),
      );
  });
}

const STATUS_TEXT = { connecting: "Connecting…", live: "Live", offline: "Reconnecting…" };

export function Todo(props) {
  const { items, status, channel } = useTodoChannel(props.items, props.position);
  const [draft, setDraft] = useState("");
  const [adding, setAdding] = useState(false);
  const [pending, setPending] = useState(() => new Set());
  const [editing, setEditing] = useState(null);
  const [notice, setNotice] = useState(null);

  const track = async (id, event, data) => {
    setPending((current) => new Set(current).add(id));
    const outcome = await push(channel, event, data);
    setPending((current) => {
      const next = new Set(current);
      next.delete(id);
      return next;
    });
    setNotice(outcome.status === "ok" ? null : outcome.message);
    return outcome;
  };

  const add = async (event) => {
    event.preventDefault();
    if (draft.trim() === "" || adding) return;
    setAdding(true);
    const outcome = await push(channel, "insert", { title: draft });
    setAdding(false);
    if (outcome.status === "ok") setDraft("");
    setNotice(outcome.status === "ok" ? null : outcome.message);
  };

  const rename = (item, title) => {
    setEditing(null);
    if (title !== item.title) track(item.id, "update", { id: item.id, title });
  };

  const done = items.filter((item) => item.done).length;
  return h(
    "section",
    { className: "todo" },
    h(
      "div",
      { className: "card" },
      h(
        "div",
        { className: "bar" },
        h("span", null, h("span", { className: "mode" }, props.mode ?? "engine"), " instance"),
        h(
          "span",
          { className: "status", "data-state": status, role: "status" },
          h("span", { className: "dot", "aria-hidden": "true" }),
          STATUS_TEXT[status],
        ),
      ),
      h(
        "form",
        { className: "add", onSubmit: add },
        h("input", {
          type: "text",
          name: "title",
          placeholder: "What needs to be done?",
          "aria-label": "New todo",
          autoComplete: "off",
          maxLength: 255,
          value: draft,
          onChange: (event) => setDraft(event.target.value),
        }),
        h("button", { className: "primary", type: "submit", disabled: adding || draft.trim() === "" }, "Add"),
      ),
      items.length === 0
        ? h("p", { className: "empty" }, "Nothing to do yet.")
        : h(
            "ul",
            { className: "items" },
            items.map((item) =>
              h(
                "li",
                {
                  key: item.id,
                  className: "item",
                  "data-id": item.id,
                  "data-done": String(item.done),
                  "data-pending": String(pending.has(item.id)),
                },
                h("input", {
                  type: "checkbox",
                  checked: item.done,
                  "aria-label": `Done: ${item.title}`,
                  onChange: () => track(item.id, "update", { id: item.id, done: !item.done }),
                }),
                editing === item.id
                  ? h("input", {
                      type: "text",
                      className: "edit title",
                      defaultValue: item.title,
                      maxLength: 255,
                      "aria-label": `Rename ${item.title}`,
                      autoFocus: true,
                      onBlur: (event) => rename(item, event.target.value),
                      onKeyDown: (event) => {
                        if (event.key === "Enter") event.target.blur();
                        if (event.key === "Escape") setEditing(null);
                      },
                    })
                  : h(
                      "button",
                      {
                        type: "button",
                        className: "title",
                        title: "Click to rename",
                        onClick: () => setEditing(item.id),
                      },
                      item.title,
                    ),
                h(
                  "button",
                  {
                    type: "button",
                    className: "delete",
                    "aria-label": `Delete ${item.title}`,
                    onClick: () => track(item.id, "delete", { id: item.id }),
                  },
                  "×",
                ),
              ),
            ),
          ),
      items.length === 0 ? null : h("div", { className: "foot" }, `${items.length - done} left · ${done} done`),
    ),
    notice === null ? null : h("p", { className: "notice", role: "alert" }, notice),
  );
}
