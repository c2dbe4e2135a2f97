// The status history dialog: every event of every attempt, with the provider's and our time.
import * as clock from "./clock.js";
import { url } from "./config.js";
import { el, getJSON } from "./dom.js";
import { hidePopover, labelFor } from "./ticks.js";

export const dialog = document.querySelector("[data-timeline]");

export const openTimeline = async (messageId) => {
  hidePopover();
  const body = dialog.querySelector("[data-timeline-body]");
  const summary = dialog.querySelector("[data-timeline-summary]");
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  summary.textContent = "";
  dialog.dataset.messageId = messageId;
  if (!dialog.open) dialog.showModal();
  let result;
  try {
    result = await getJSON(url("events", messageId));
  } catch (_) {
    result = { ok: false };
  }
  if (!result.ok) {
    body.replaceChildren(el("p", { class: "form-error", text: "Could not load the history." }));
    return;
  }
  const data = result.body;
  const m = data.message;
  summary.textContent = `Now: ${labelFor(m.status, m.at)}${m.attempt > 1 ? ` · attempt ${m.attempt}` : ""}`;
  if (!data.events.length) {
    body.replaceChildren(el("p", { class: "muted", text: "No status events yet: the message is waiting to be sent." }));
    return;
  }
  const table = el(
    "table",
    {},
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...["What happened", "Provider time", "Received by Tickmark", "Note"].map((h) => el("th", { scope: "col", text: h })),
      ),
    ),
  );
  const tbody = el("tbody");
  let attempt = null;
  const attempts = new Set(data.events.map((e) => e.attempt)).size;
  for (const e of data.events) {
    if (attempts > 1 && e.attempt !== attempt) {
      attempt = e.attempt;
      tbody.append(el("tr", { class: "attempt-row" }, el("th", { colspan: "4", scope: "rowgroup", text: `Attempt ${e.attempt}${e.current ? " (current)" : ""}` })));
    }
    const error = e.error ? [e.error.code && `(${e.error.code})`, e.error.title, e.error.detail].filter(Boolean).join(" ") : "";
    const what = el(
      "td",
      {},
      el("span", { text: e.what }),
      el("span", { class: "raw" }, el("code", { text: e.raw_status || "", title: "As reported" }), ` · ${e.source}`),
    );
    if (error) what.append(el("span", { class: "event-error", text: error }));
    tbody.append(
      el(
        "tr",
        { class: e.current ? "" : "old-attempt", "data-event": true },
        what,
        el("td", {}, clock.element(e.occurred_at, "stamp")),
        el("td", {}, clock.element(e.received_at, "stamp")),
        el("td", { text: e.effect || "" }),
      ),
    );
  }
  table.append(tbody);
  body.replaceChildren(table);
};
