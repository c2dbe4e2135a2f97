// Tickmark contact web widget: start a chat, write, receive replies live, acknowledge them.
// Plain JavaScript. The contact's token is their only credential; it never leaves this origin.
"use strict";

(() => {
  const root = document.querySelector("[data-widget]");
  if (!root) return;
  const inboxId = root.dataset.inboxId;
  const storageKey = `tickmark.widget.${inboxId}`;
  const startSection = root.querySelector("[data-widget-start]");
  const chatSection = root.querySelector("[data-widget-chat]");
  const list = root.querySelector("[data-widget-messages]");
  const status = root.querySelector("[data-widget-connection]");
  const textarea = root.querySelector("#widget-content");

  let memoryToken = null; // when storage is blocked (privacy modes, sandboxed iframes)
  const loadToken = () => {
    try {
      return window.localStorage.getItem(storageKey) || memoryToken;
    } catch (_) {
      return memoryToken;
    }
  };
  const saveToken = (value) => {
    memoryToken = value;
    try {
      if (value) window.localStorage.setItem(storageKey, value);
      else window.localStorage.removeItem(storageKey);
    } catch (_) {
      /* keep it in memory for this page */
    }
  };

  let token = loadToken();
  let socket = null;
  let failures = 0;
  const shown = new Set();
  const toAck = new Set();
  const toRead = new Set();

  const api = (path, options = {}) =>
    fetch(`/widget/${inboxId}/${path}`, {
      ...options,
      headers: { "Content-Type": "application/json", "X-Widget-Token": token || "", ...(options.headers || {}) },
    });

  const render = (m) => {
    if (shown.has(m.message_id)) return;
    shown.add(m.message_id);
    const from = m.from || "agent";
    const li = document.createElement("li");
    li.className = `w-bubble w-bubble--${from}`;
    li.dataset.messageId = m.message_id;
    li.dataset.from = from;
    li.append(document.createTextNode(m.content || ""));
    const time = document.createElement("time");
    time.dateTime = m.created_at;
    // The same 24-hour local time as the agent's inbox; the full date on hover.
    const date = new Date(m.created_at);
    time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    time.title = date.toLocaleString([], { dateStyle: "full", timeStyle: "short" });
    li.append(time);
    list.append(li);
    li.scrollIntoView({ block: "end" });
    if (from === "agent") {
      if (!m.acked) toAck.add(m.message_id);
      if (!m.read) toRead.add(m.message_id);
    }
  };

  // Receipts: every agent message shown is acknowledged (→ delivered); it counts as read only
  // while the page is actually visible to the contact.
  const flushReceipts = () => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (toAck.size) {
      socket.send(JSON.stringify({ type: "ack", message_ids: [...toAck] }));
      toAck.clear();
    }
    if (toRead.size && document.visibilityState === "visible") {
      socket.send(JSON.stringify({ type: "read", message_ids: [...toRead] }));
      toRead.clear();
    }
  };
  document.addEventListener("visibilitychange", flushReceipts);

  const loadHistory = async () => {
    const response = await api("messages/");
    if (response.status === 403) {
      // The token is no longer valid: start over.
      saveToken(null);
      token = null;
      showStart();
      return false;
    }
    if (!response.ok) return true;
    const data = await response.json();
    data.messages.forEach(render);
    flushReceipts();
    return true;
  };

  const setStatus = (text) => {
    status.textContent = text;
  };
  // A 429 (too many chats or messages from here): say so, and keep what the contact typed.
  const showLimit = async (response) => {
    const data = await response.json().catch(() => ({}));
    setStatus((data.error && data.error.message) || "Too many attempts. Try again in a minute.");
  };
  let retryAfter = 0; // seconds, from the socket's rate-limit frame

  const connect = () => {
    if (!token) return;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(
      `${scheme}://${window.location.host}/ws/widget/${inboxId}/?token=${encodeURIComponent(token)}`,
    );
    socket = ws;
    ws.addEventListener("open", async () => {
      failures = 0;
      setStatus("Online");
      await loadHistory(); // replies pushed while we were away
      flushReceipts();
    });
    ws.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "error" && event.code === "rate_limited") {
        setStatus(event.message);
        retryAfter = event.retry_after || 60;
      } else if (event.type === "message") {
        render({ ...event, from: "agent" });
        flushReceipts();
      }
    });
    ws.addEventListener("close", () => {
      if (socket !== ws || !token) return;
      const delay = retryAfter ? retryAfter * 1000 : Math.min(30000, 1000 * 2 ** failures++);
      if (!retryAfter) setStatus("Reconnecting…");
      retryAfter = 0;
      setTimeout(connect, delay);
    });
  };

  const showStart = () => {
    startSection.hidden = false;
    chatSection.hidden = true;
    root.querySelector("#widget-name").focus();
  };
  const showChat = () => {
    startSection.hidden = true;
    chatSection.hidden = false;
    textarea.focus();
  };

  root.querySelector("[data-start-form]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = event.target.elements.name.value.trim();
    const response = await api("start/", { method: "POST", body: JSON.stringify({ name }) });
    if (response.status === 429) await showLimit(response);
    if (!response.ok) return;
    token = (await response.json()).token;
    saveToken(token);
    showChat();
    connect();
  });

  root.querySelector("[data-widget-compose]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = textarea.value.trim();
    if (!content) return;
    const response = await api("messages/", { method: "POST", body: JSON.stringify({ content }) });
    if (response.ok) {
      render((await response.json()).message);
      textarea.value = "";
    } else if (response.status === 429) {
      await showLimit(response);
    } else if (response.status === 403) {
      saveToken(null);
      token = null;
      showStart();
    }
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      textarea.form.requestSubmit();
    }
  });

  if (token) {
    showChat();
    connect();
  } else {
    showStart();
  }
  window.tickmarkWidget = {
    get socket() {
      return socket;
    },
  };
})();
