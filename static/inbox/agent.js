// Tickmark agent inbox: live ticks over /ws/agent/, status timeline, compose, resend, search,
// new conversations. Plain JavaScript, no build step, no inline script: labels and URLs come
// from the server in <script type="application/json" id="agent-config">. Times are painted by
// clock.js (the agent's local time everywhere).
"use strict";

(() => {
  const app = document.querySelector("[data-agent-app]");
  if (!app) return;
  const clock = window.tickmarkClock;
  const config = JSON.parse(document.getElementById("agent-config")?.textContent || "{}");

  const conversationId = app.dataset.conversationId ? Number(app.dataset.conversationId) : null;
  const list = app.querySelector("[data-conversation-list]");
  const messagesEl = app.querySelector("[data-messages]");
  const connectionEl = app.querySelector("[data-connection]");
  const compose = app.querySelector("[data-compose]");
  const filters = app.querySelector("[data-filters]");
  const dialog = document.querySelector("[data-timeline]");
  const popover = document.querySelector("[data-tick-popover]");

  const LABELS = config.labels || {};
  const STAGES = config.stages || {};
  const MEANINGS = config.meanings || {};
  const url = (name, id) => (config.urls?.[name] || "").replace("{id}", encodeURIComponent(id));

  // message id → the version on screen; anything older that arrives later is ignored.
  const versions = new Map();
  // message id → { tick, status, at, stages } for the tick popover.
  const states = new Map();

  // ---------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------
  const csrfToken = () => {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  };

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  const labelFor = (status, iso) => {
    const date = clock.parse(iso);
    return `${LABELS[status] || status}${date ? ` ${clock.time(date, true)}` : ""}`;
  };

  // A provider title that repeats the code: "(#131009) Parameter value is not valid".
  const withoutCode = (title, code) => {
    if (!title || !code) return title || "";
    const quoted = String(code).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const cleaned = title.replace(new RegExp(`^\\s*\\(#?${quoted}\\)\\s*|\\s*\\(#?${quoted}\\)\\s*$`, "g"), "");
    return cleaned.trim() || title;
  };

  const getJSON = async (target, options = {}) => {
    const response = await fetch(target, {
      credentials: "same-origin",
      ...options,
      headers: { Accept: "application/json", ...(options.headers || {}) },
    });
    if (response.status === 401) {
      window.location.assign(`/login/?next=${encodeURIComponent(window.location.pathname)}`);
      throw new Error("signed out");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  };

  // URL-encoded, not multipart: Twisted (under daphne) rejects some multipart bodies with 400.
  const post = (target, data) =>
    getJSON(target, {
      method: "POST",
      body: data instanceof URLSearchParams ? data : new URLSearchParams(data ? new FormData(data) : undefined),
      headers: { "X-CSRFToken": csrfToken() },
    });

  const bubbleOf = (id) =>
    messagesEl ? messagesEl.querySelector(`li.bubble[data-message-id="${CSS.escape(id)}"]`) : null;

  // ---------------------------------------------------------------------------------------
  // Ticks
  // ---------------------------------------------------------------------------------------
  const tickSvg = (tick, label) => {
    const template = document.getElementById(`tick-svg-${tick}`);
    const svg = template.content.firstElementChild.cloneNode(true);
    svg.setAttribute("aria-label", label);
    svg.querySelector("title").textContent = label;
    return svg;
  };

  const paintTick = (node, state) => {
    const label = labelFor(state.status, state.at);
    node.className = `${node.className.replace(/\btick--\w+/g, "").trim()} tick--${state.tick}`;
    node.dataset.tick = state.tick;
    node.dataset.status = state.status;
    node.dataset.at = state.at;
    if (node.tagName === "BUTTON") {
      node.title = label;
      node.setAttribute("aria-label", `${label} — show status history`);
      node.setAttribute("aria-describedby", "tick-popover");
    }
    node.replaceChildren(tickSvg(state.tick, label));
  };

  const tickButton = (m) => {
    const button = el("button", {
      type: "button",
      class: "tick",
      "data-message-id": m.id,
      "aria-haspopup": "dialog",
    });
    paintTick(button, m);
    return button;
  };

  const remember = (m) => {
    const previous = states.get(m.id) || { stages: {} };
    const stages = { ...previous.stages, ...(m.stages || {}) };
    // A live event carries only the new status' time: that is the time of its stage.
    const stage = { sent: "sent", received: "sent", delivered: "delivered", read: "read", failed: "failed", expired: "failed" }[m.status];
    if (stage && !m.stages && m.at) stages[stage] = stages[stage] || m.at;
    states.set(m.id, { tick: m.tick, status: m.status, at: m.at, stages });
  };

  // ---------------------------------------------------------------------------------------
  // Tick popover: hover or focus a tick to see what it means and when each stage happened.
  // ---------------------------------------------------------------------------------------
  let popoverFor = null;
  const showPopover = (button) => {
    if (!popover) return;
    const id = button.dataset.messageId;
    let state = states.get(id);
    if (!state) {
      let stages = {};
      try {
        stages = JSON.parse(button.dataset.stages || "{}");
      } catch (_) {
        stages = {};
      }
      state = { tick: button.dataset.tick, status: button.dataset.status, at: button.dataset.at, stages };
    }
    const rows = [];
    for (const [stage, label] of Object.entries(STAGES)) {
      const iso = state.stages?.[stage] || (stage === "sent" && state.status === "sent" ? state.at : null);
      const date = iso ? clock.parse(iso) : null;
      if (!date) continue;
      rows.push(el("li", {}, el("span", { text: label }), " ", clock.element(iso, "stamp")));
    }
    popover.replaceChildren(
      el("strong", { text: LABELS[state.status] || state.status }),
      el("p", { text: MEANINGS[state.tick] || "" }),
      rows.length ? el("ul", { class: "stages" }, ...rows) : null,
      el("p", { class: "muted", text: "Click for the full history." }),
    );
    popover.hidden = false;
    const box = button.getBoundingClientRect();
    const width = popover.offsetWidth;
    const left = Math.max(8, Math.min(window.innerWidth - width - 8, box.right - width));
    const top = box.top - popover.offsetHeight - 6;
    popover.style.left = `${left}px`;
    popover.style.top = `${top < 8 ? box.bottom + 6 : top}px`;
    popoverFor = button;
  };
  const hidePopover = () => {
    if (popover) popover.hidden = true;
    popoverFor = null;
  };

  // ---------------------------------------------------------------------------------------
  // Messages
  // ---------------------------------------------------------------------------------------
  // Events say `message_id` and `status_updated_at`; the JSON endpoints say `id` and `at`.
  const normalize = (m) => ({
    ...m,
    id: m.id || m.message_id,
    at: m.at || m.status_updated_at || m.created_at,
  });

  const renderFailure = (li, m) => {
    li.querySelector("[data-failure]")?.remove();
    li.classList.toggle("bubble--failed", m.tick === "failed");
    if (m.tick !== "failed") return;
    const error = m.error || {};
    const resendable = m.resendable === true;
    const box = el(
      "div",
      { class: "failure", role: "alert", "data-failure": true },
      el(
        "p",
        { class: "failure-title" },
        el("strong", { text: withoutCode(error.title, error.code) || LABELS[m.status] || "Failed" }),
        error.code ? el("span", { class: "code", text: ` (${error.code})` }) : null,
      ),
      error.explanation ? el("p", { class: "failure-explanation", text: error.explanation }) : null,
      error.hint
        ? el("p", { class: "failure-hint" }, el("strong", { text: resendable ? "Hint:" : "What to do instead:" }), ` ${error.hint}`)
        : null,
    );
    if (resendable) {
      const next = (m.attempt || 1) + 1;
      box.append(
        el(
          "form",
          { method: "post", action: url("resend", m.id), class: "resend-form", "data-resend": true },
          el("button", { type: "submit", class: "resend", text: next > 2 ? `Resend (attempt ${next})` : "Resend" }),
        ),
      );
    } else if (m.resendable === false) {
      box.append(el("p", { class: "muted no-resend", "data-no-resend": true, text: "Resending will not help with this error." }));
    }
    li.append(box);
  };

  const renderAttempt = (li, m) => {
    const meta = li.querySelector(".bubble-meta");
    let badge = meta?.querySelector("[data-attempt]");
    if (!meta || !m.attempt) return;
    if (m.attempt > 1) {
      if (!badge) {
        badge = el("span", { class: "attempt", "data-attempt": true });
        meta.prepend(badge, " ");
      }
      badge.textContent = `attempt ${m.attempt}`;
    }
  };

  const buildBubble = (m) => {
    const li = el("li", {
      class: `bubble bubble--${m.direction}`,
      "data-message-id": m.id,
      "data-version": m.version,
      "data-created-at": m.created_at,
    });
    const body = el("div", { class: "bubble-body" });
    if (m.template && m.template.name) {
      body.append(
        el("span", { class: "template-badge", text: "Template" }),
        " ",
        el("code", { text: m.template.name }),
        " ",
        el("span", { class: "muted", text: `(${m.template.language})` }),
      );
      if (m.content) body.append(el("br"));
    } else if (!m.content && m.direction === "outgoing") {
      body.append(el("span", { class: "template-badge", text: "Template" }));
    }
    if (m.deleted) {
      // The contact deleted (unsent) it: say so, never show the text (issue #9).
      body.replaceChildren(el("em", { class: "muted bubble-deleted", text: "This message was deleted" }));
    } else {
      body.append(document.createTextNode(m.content || ""));
    }
    const meta = el("div", { class: "bubble-meta" }, clock.element(m.created_at, "time"));
    if (m.direction === "outgoing") meta.append(" ", tickButton(m));
    li.append(body, meta);
    renderAttempt(li, m);
    if (m.tick === "failed") renderFailure(li, m);
    return li;
  };

  // A "Today" / "Yesterday" / weekday / date line wherever the local day changes.
  const renderDays = () => {
    if (!messagesEl) return;
    for (const sep of messagesEl.querySelectorAll("[data-day]")) sep.remove();
    let previous = null;
    for (const li of messagesEl.querySelectorAll("li.bubble")) {
      const date = clock.parse(li.dataset.createdAt);
      if (!date) continue;
      if (!previous || !clock.sameDay(previous, date)) {
        li.before(el("li", { class: "day", role: "separator", "data-day": true }, el("span", { text: clock.dayLabel(date) })));
      }
      previous = date;
    }
  };

  const scrollToEnd = () => messagesEl?.lastElementChild?.scrollIntoView({ block: "end" });

  const addMessage = (raw) => {
    if (!messagesEl) return;
    const m = normalize(raw);
    if (bubbleOf(m.id)) {
      applyStatus(m);
      return;
    }
    messagesEl.querySelector("[data-empty]")?.remove();
    versions.set(m.id, m.version);
    remember(m);
    messagesEl.append(buildBubble(m));
    renderDays();
    scrollToEnd();
  };

  // Apply a status; return false when it is not newer than what the page shows.
  const applyStatus = (raw) => {
    const m = normalize(raw);
    const shown = versions.get(m.id) || 0;
    if (m.version <= shown) return false;
    versions.set(m.id, m.version);
    remember(m);
    const li = bubbleOf(m.id);
    if (li) {
      li.dataset.version = m.version;
      const button = li.querySelector("button.tick");
      if (button) paintTick(button, m);
      renderAttempt(li, m);
      renderFailure(li, m);
      // A live failure event names the error; the catalogue's explanation comes with a re-read.
      if (m.tick === "failed" && !(m.error && m.error.explanation)) scheduleResync();
      if (popoverFor && popoverFor.dataset.messageId === m.id) showPopover(popoverFor);
    }
    if (list) {
      for (const span of list.querySelectorAll(`.conv-tick[data-message-id="${CSS.escape(m.id)}"]`)) {
        paintTick(span, m);
      }
    }
    return true;
  };

  const setWindowClosed = (closed) => {
    if (!compose) return;
    compose.dataset.windowClosed = String(closed);
    compose.querySelector("[data-window-notice]").hidden = !closed;
    compose.querySelector("[data-compose-text]").hidden = closed;
    const templates = compose.querySelector("[data-compose-template]");
    if (templates && closed) templates.open = true;
  };

  // ---------------------------------------------------------------------------------------
  // Re-reading current state (after every (re)connect, so a missed event never sticks)
  // ---------------------------------------------------------------------------------------
  let listTimer = null;
  const scheduleListReload = () => {
    clearTimeout(listTimer);
    listTimer = setTimeout(reloadList, 150);
  };

  const listQuery = () => {
    const params = filters ? new URLSearchParams(new FormData(filters)) : new URLSearchParams();
    for (const [key, value] of [...params]) if (!value) params.delete(key);
    return params;
  };

  let listRequest = 0;
  const reloadList = async () => {
    if (!list) return;
    const params = listQuery();
    if (conversationId) params.set("current", conversationId);
    const ticket = ++listRequest;
    const response = await fetch(`${app.dataset.listUrl}?${params}`, { credentials: "same-origin" });
    if (!response.ok || ticket !== listRequest) return; // a newer search is on its way
    list.innerHTML = await response.text();
    clock.paint(list);
    paintListTicks();
    list.setAttribute("aria-busy", "false");
  };

  const paintListTicks = () => {
    for (const span of list?.querySelectorAll(".conv-tick") || []) {
      paintTick(span, { tick: span.dataset.tick, status: span.dataset.status, at: span.dataset.at });
    }
  };

  let resyncTimer = null;
  const scheduleResync = () => {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(resync, 200);
  };

  const resync = async () => {
    scheduleListReload();
    if (!conversationId) return;
    const { ok, body } = await getJSON(url("messages", conversationId));
    if (!ok) return;
    for (const m of body.messages) {
      remember(normalize(m));
      if (!bubbleOf(m.id)) {
        addMessage(m);
        continue;
      }
      const fresh = applyStatus(m);
      const li = bubbleOf(m.id);
      if (!fresh && m.version === versions.get(m.id) && m.tick === "failed") renderFailure(li, m);
    }
    setWindowClosed(body.compose.window_closed);
  };

  // ---------------------------------------------------------------------------------------
  // Live events
  // ---------------------------------------------------------------------------------------
  const handleEvent = (event) => {
    if (event.type === "message.status") {
      applyStatus(event);
    } else if (event.type === "message.created") {
      if (event.conversation_id === conversationId) {
        addMessage(event);
        if (event.direction === "incoming") {
          setWindowClosed(false);
          post(url("read", conversationId)).finally(scheduleListReload);
          return;
        }
      }
      scheduleListReload();
    }
  };

  let socket = null;
  let failures = 0;
  const setConnection = (state) => {
    connectionEl.dataset.connection = state;
    connectionEl.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline — reconnecting…" }[state];
  };

  const connect = () => {
    setConnection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws/agent/`);
    socket = ws;
    ws.addEventListener("open", () => {
      failures = 0;
      setConnection("live");
      // Whatever happened while we were not listening (page load, a dropped socket) is read now.
      resync();
    });
    ws.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "events") data.events.forEach(handleEvent);
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      setConnection("offline");
      const delay = Math.min(30000, 1000 * 2 ** failures++) * (0.8 + Math.random() * 0.4);
      setTimeout(connect, delay);
    });
  };

  // ---------------------------------------------------------------------------------------
  // Timeline dialog
  // ---------------------------------------------------------------------------------------
  const openTimeline = async (messageId) => {
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

  // ---------------------------------------------------------------------------------------
  // Compose: counter with the channel's limit, and sending that survives a lost connection.
  // ---------------------------------------------------------------------------------------
  const textarea = document.getElementById("compose-content");
  const counter = compose?.querySelector("[data-counter]");
  const maxLength = Number(compose?.dataset.maxLength || 4096);
  const countChars = () => {
    if (!textarea || !counter) return true;
    const length = textarea.value.length;
    const over = length > maxLength;
    counter.textContent = over
      ? `Too long: ${length.toLocaleString()} / ${maxLength.toLocaleString()} characters`
      : `${length.toLocaleString()} / ${maxLength.toLocaleString()}`;
    counter.classList.toggle("counter--over", over);
    counter.classList.toggle("counter--near", !over && length > maxLength * 0.9);
    textarea.setAttribute("aria-invalid", String(over));
    const submit = textarea.form.querySelector("button[type=submit]");
    if (submit) submit.disabled = over;
    return !over;
  };

  const clientKey = () =>
    window.crypto?.randomUUID?.() ||
    `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;

  let localCount = 0;
  // The request never reached Tickmark (offline, server down): keep the text in a bubble that
  // says so, with a Retry that sends it again.
  const unsentBubble = (form, values, reason) => {
    const id = `local-${++localCount}`;
    const li = el(
      "li",
      { class: "bubble bubble--outgoing bubble--unsent", "data-local-id": id, "data-created-at": new Date().toISOString() },
      el("div", { class: "bubble-body", text: values.get("content") || `Template ${values.get("template_name") || ""}` }),
      el("div", { class: "bubble-meta" }, clock.element(new Date().toISOString(), "time")),
      el(
        "div",
        { class: "failure", role: "alert", "data-failure": true },
        el("p", { class: "failure-title" }, el("strong", { text: "Not sent: Tickmark could not be reached." })),
        el("p", { class: "failure-explanation", text: reason }),
        el("button", { type: "button", class: "resend", "data-retry-local": id, text: "Retry" }),
      ),
    );
    li.unsent = { action: form.action, values };
    messagesEl.querySelector("[data-empty]")?.remove();
    messagesEl.append(li);
    renderDays();
    scrollToEnd();
    return li;
  };

  const sendFrom = async (form, values, errorEl) => {
    let result;
    try {
      result = await post(form.action || form, values);
    } catch (error) {
      if (error.message === "signed out") throw error;
      return { unreachable: true };
    }
    const { ok, body } = result;
    if (ok) {
      addMessage(body.message);
      scheduleListReload();
    } else if (errorEl) {
      errorEl.textContent = body?.error?.message || "Could not send.";
      errorEl.hidden = false;
      if (body?.error?.code === "outside_customer_service_window") setWindowClosed(true);
    }
    return { ok };
  };

  const retryUnsent = async (button) => {
    const li = button.closest("[data-local-id]");
    if (!li?.unsent) return;
    button.disabled = true;
    const errorEl = compose?.querySelector("[data-compose-error]");
    const outcome = await sendFrom(li.unsent.action, li.unsent.values, errorEl);
    if (outcome.unreachable) {
      button.disabled = false;
      li.querySelector(".failure-explanation").textContent = `Still unreachable (${new Date().toLocaleTimeString()}). Check your connection and retry.`;
      return;
    }
    li.remove();
    renderDays();
  };

  // ---------------------------------------------------------------------------------------
  // Start a conversation
  // ---------------------------------------------------------------------------------------
  const startDialog = document.querySelector("[data-start-dialog]");
  const startForm = startDialog?.querySelector("[data-start-form]");
  const syncStartForm = () => {
    if (!startForm) return;
    const option = startForm.querySelector("[data-start-inbox]").selectedOptions[0];
    const needsTemplate = option?.dataset.needsTemplate === "true";
    const templateBox = startForm.querySelector("[data-start-template]");
    templateBox.hidden = !needsTemplate;
    for (const input of templateBox.querySelectorAll("input")) input.required = needsTemplate;
    startForm.querySelector("[data-start-text]").hidden = needsTemplate;
    startForm.querySelector("#start-content").required = !needsTemplate;
    startForm.querySelector("[data-start-hint]").textContent = option?.dataset.addressHint || "";
    startForm.querySelector("[data-start-to]").placeholder = option?.dataset.addressHint || "";
  };

  // ---------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const tick = event.target.closest("button.tick");
    if (tick) {
      openTimeline(tick.dataset.messageId);
      return;
    }
    const retry = event.target.closest("[data-retry-local]");
    if (retry) {
      retryUnsent(retry);
      return;
    }
    if (event.target.closest("[data-open-start]") && startDialog) {
      syncStartForm();
      startDialog.showModal();
      startForm.querySelector("[data-start-to]").focus();
    }
  });
  for (const d of [dialog, startDialog]) {
    d?.addEventListener("click", (event) => {
      if (event.target === d) d.close(); // click on the backdrop
    });
  }
  startForm?.querySelector("[data-start-inbox]").addEventListener("change", syncStartForm);

  const tickOf = (event) => event.target.closest?.("button.tick");
  document.addEventListener("pointerover", (event) => {
    const tick = tickOf(event);
    if (tick && tick !== popoverFor) showPopover(tick);
    else if (!tick && popoverFor) hidePopover();
  });
  document.addEventListener("focusin", (event) => {
    const tick = tickOf(event);
    if (tick) showPopover(tick);
    else if (popoverFor) hidePopover();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hidePopover();
  });
  messagesEl?.addEventListener("scroll", hidePopover, { passive: true });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.matches("[data-filters]")) {
      event.preventDefault();
      reloadList();
      return;
    }
    if (form.matches("[data-resend]")) {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const { ok, body } = await post(form.action, form);
        if (ok) applyStatus(body.message);
        else window.alert(body?.error?.message || "Could not resend.");
      } catch (_) {
        window.alert("Tickmark could not be reached. Check your connection and try again.");
      } finally {
        button.disabled = false;
      }
      return;
    }
    if (form.matches("[data-start-form]")) {
      event.preventDefault();
      const errorEl = form.querySelector("[data-start-error]");
      errorEl.hidden = true;
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        const { ok, body } = await post(form.action, form);
        if (ok) {
          window.location.assign(body.url);
          return;
        }
        errorEl.textContent = body?.error?.message || "Could not start the conversation.";
        errorEl.hidden = false;
      } catch (_) {
        errorEl.textContent = "Tickmark could not be reached. Check your connection and try again.";
        errorEl.hidden = false;
      } finally {
        submit.disabled = false;
      }
      return;
    }
    if (form.matches("[data-compose-text], [data-template-form]")) {
      event.preventDefault();
      if (form.matches("[data-compose-text]") && !countChars()) return;
      const errorEl = compose.querySelector("[data-compose-error]");
      errorEl.hidden = true;
      const submit = form.querySelector("button[type=submit]");
      const values = new URLSearchParams(new FormData(form));
      // One key per typed message: a Retry after a lost answer cannot send it twice.
      values.set("client_key", clientKey());
      submit.disabled = true;
      try {
        const outcome = await sendFrom(form, values, errorEl);
        if (outcome.unreachable) {
          unsentBubble(form, values, "Your message is kept here; nothing was sent. Check your connection, then retry.");
        }
        if (outcome.ok || outcome.unreachable) {
          form.reset();
          form.querySelector("textarea, input:not([type=hidden])")?.focus();
        }
      } finally {
        submit.disabled = false;
        countChars();
      }
    }
  });

  if (filters) {
    let searchTimer = null;
    filters.addEventListener("input", () => {
      clearTimeout(searchTimer);
      list.setAttribute("aria-busy", "true");
      searchTimer = setTimeout(() => {
        const params = listQuery();
        window.history.replaceState(null, "", `${window.location.pathname}${params.size ? `?${params}` : ""}`);
        reloadList();
      }, 200);
    });
  }

  if (textarea) {
    textarea.addEventListener("input", countChars);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (textarea.value.trim()) textarea.form.requestSubmit();
      }
    });
    countChars();
  }

  // Server-rendered times are written in UTC as a fallback; show the agent's local time.
  clock.paint(document);
  for (const li of app.querySelectorAll("li.bubble")) {
    versions.set(li.dataset.messageId, Number(li.dataset.version));
  }
  for (const button of app.querySelectorAll("button.tick")) {
    paintTick(button, { tick: button.dataset.tick, status: button.dataset.status, at: button.dataset.at });
  }
  paintListTicks();
  renderDays();
  scrollToEnd();

  window.tickmark = {
    get socket() {
      return socket;
    },
    resync,
  };
  connect();
})();
