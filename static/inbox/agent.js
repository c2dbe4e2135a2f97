// Tickmark agent inbox: live ticks over /ws/agent/, status timeline, compose, resend.
// Plain JavaScript, no build step. The server renders the page; this file keeps it current.
"use strict";

(() => {
  const app = document.querySelector("[data-agent-app]");
  if (!app) return;

  const conversationId = app.dataset.conversationId ? Number(app.dataset.conversationId) : null;
  const list = app.querySelector("[data-conversation-list]");
  const messagesEl = app.querySelector("[data-messages]");
  const connectionEl = app.querySelector("[data-connection]");
  const compose = app.querySelector("[data-compose]");
  const dialog = document.querySelector("[data-timeline]");

  const LABELS = {
    queued: "Queued",
    unknown: "Waiting for confirmation",
    sent: "Sent",
    received: "Sent",
    delivered: "Delivered",
    read: "Read",
    failed: "Failed",
    expired: "Expired",
    deleted: "Deleted",
  };
  // message id → the version on screen; anything older that arrives later is ignored.
  const versions = new Map();

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

  const clock = (iso, withSeconds) => {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) options.second = "2-digit";
    return date.toLocaleTimeString([], options);
  };

  const labelFor = (status, iso) => `${LABELS[status] || status} ${clock(iso, true)}`.trim();

  const getJSON = async (url, options = {}) => {
    const response = await fetch(url, {
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
  const post = (url, form) =>
    getJSON(url, {
      method: "POST",
      body: new URLSearchParams(form ? new FormData(form) : undefined),
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
    const box = el(
      "div",
      { class: "failure", role: "alert", "data-failure": true },
      el(
        "p",
        { class: "failure-title" },
        el("strong", { text: error.title || LABELS[m.status] || "Failed" }),
        error.code ? el("span", { class: "code", text: ` (${error.code})` }) : null,
      ),
      error.explanation ? el("p", { class: "failure-explanation", text: error.explanation }) : null,
      error.hint
        ? el("p", { class: "failure-hint" }, el("strong", { text: "Hint:" }), ` ${error.hint}`)
        : null,
    );
    if (m.resendable !== false) {
      box.append(
        el(
          "form",
          {
            method: "post",
            action: `/messages/${m.id}/resend/`,
            class: "resend-form",
            "data-resend": true,
          },
          el("button", { type: "submit", class: "resend", text: "Resend" }),
        ),
      );
    }
    li.append(box);
  };

  const buildBubble = (m) => {
    const li = el("li", {
      class: `bubble bubble--${m.direction}`,
      "data-message-id": m.id,
      "data-version": m.version,
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
    const meta = el(
      "div",
      { class: "bubble-meta" },
      el("time", { datetime: m.created_at, text: clock(m.created_at, false) }),
    );
    if (m.direction === "outgoing") meta.append(" ", tickButton(m));
    li.append(body, meta);
    if (m.tick === "failed") renderFailure(li, m);
    return li;
  };

  const addMessage = (raw) => {
    if (!messagesEl) return;
    const m = normalize(raw);
    if (bubbleOf(m.id)) {
      applyStatus(m);
      return;
    }
    messagesEl.querySelector("[data-empty]")?.remove();
    versions.set(m.id, m.version);
    messagesEl.append(buildBubble(m));
    messagesEl.lastElementChild.scrollIntoView({ block: "end" });
  };

  // Apply a status; return false when it is not newer than what the page shows.
  const applyStatus = (raw) => {
    const m = normalize(raw);
    const shown = versions.get(m.id) || 0;
    if (m.version <= shown) return false;
    versions.set(m.id, m.version);
    const li = bubbleOf(m.id);
    if (li) {
      li.dataset.version = m.version;
      const button = li.querySelector("button.tick");
      if (button) paintTick(button, m);
      renderFailure(li, m);
      // A live failure event names the error; the catalogue's explanation comes with a re-read.
      if (m.tick === "failed" && !(m.error && m.error.explanation)) scheduleResync();
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

  const reloadList = async () => {
    if (!list) return;
    const url = `${app.dataset.listUrl}${conversationId ? `?current=${conversationId}` : ""}`;
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) list.innerHTML = await response.text();
  };

  let resyncTimer = null;
  const scheduleResync = () => {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(resync, 200);
  };

  const resync = async () => {
    scheduleListReload();
    if (!conversationId) return;
    const { ok, body } = await getJSON(`/conversations/${conversationId}/messages.json`);
    if (!ok) return;
    for (const m of body.messages) {
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
          post(`/conversations/${conversationId}/read/`).finally(scheduleListReload);
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
    const body = dialog.querySelector("[data-timeline-body]");
    const summary = dialog.querySelector("[data-timeline-summary]");
    body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    summary.textContent = "";
    dialog.dataset.messageId = messageId;
    if (!dialog.open) dialog.showModal();
    const { ok, body: data } = await getJSON(`/messages/${messageId}/events.json`);
    if (!ok) {
      body.replaceChildren(el("p", { class: "form-error", text: "Could not load the history." }));
      return;
    }
    const m = data.message;
    summary.textContent = `${labelFor(m.status, m.at)} · attempt ${m.attempt ?? ""}`.replace(/ · attempt $/, "");
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
          ...["Provider time", "Provider status", "Source", "Outcome", "Error"].map((h) =>
            el("th", { scope: "col", text: h }),
          ),
        ),
      ),
    );
    const tbody = el("tbody");
    for (const e of data.events) {
      const error = e.error
        ? [e.error.code, e.error.title, e.error.detail].filter(Boolean).join(" · ")
        : "";
      const row = el(
        "tr",
        { class: e.current ? "" : "old-attempt" },
        el("td", {}, el("time", { datetime: e.occurred_at, title: e.occurred_at, text: new Date(e.occurred_at).toLocaleString() })),
        el("td", {}, el("code", { text: e.raw_status || e.status || "?" }), e.status && e.status !== e.raw_status ? ` → ${e.status}` : null),
        el("td", { text: e.source + (e.current ? "" : ` (attempt ${e.attempt})`) }),
        el("td", { text: e.outcome + (e.duplicates ? ` (+${e.duplicates} duplicate)` : "") }),
        el("td", { text: error }),
      );
      tbody.append(row);
    }
    table.append(tbody);
    body.replaceChildren(table);
  };

  // ---------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const tick = event.target.closest("button.tick");
    if (tick) openTimeline(tick.dataset.messageId);
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // click on the backdrop
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.matches("[data-resend]")) {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      const { ok, body } = await post(form.action, form);
      button.disabled = false;
      if (ok) applyStatus(body.message);
      else window.alert(body?.error?.message || "Could not resend.");
      return;
    }
    if (form.matches("[data-compose-text], [data-template-form]")) {
      event.preventDefault();
      const errorEl = compose.querySelector("[data-compose-error]");
      errorEl.hidden = true;
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        const { ok, body } = await post(form.action, form);
        if (ok) {
          addMessage(body.message);
          form.reset();
          form.querySelector("textarea, input:not([type=hidden])")?.focus();
          scheduleListReload();
        } else {
          errorEl.textContent = body?.error?.message || "Could not send.";
          errorEl.hidden = false;
          if (body?.error?.code === "outside_customer_service_window") setWindowClosed(true);
        }
      } finally {
        submit.disabled = false;
      }
    }
  });

  const textarea = document.getElementById("compose-content");
  if (textarea) {
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (textarea.value.trim()) textarea.form.requestSubmit();
      }
    });
  }

  // Server-rendered labels are in UTC; show the agent's local time, and remember versions.
  for (const li of app.querySelectorAll("li.bubble")) {
    versions.set(li.dataset.messageId, Number(li.dataset.version));
  }
  for (const button of app.querySelectorAll("button.tick")) {
    paintTick(button, { tick: button.dataset.tick, status: button.dataset.status, at: button.dataset.at });
  }
  messagesEl?.lastElementChild?.scrollIntoView({ block: "end" });

  window.tickmark = {
    get socket() {
      return socket;
    },
    resync,
  };
  connect();
})();
