// Tickmark delivery analytics: filters apply on change, numbers refresh live as statuses arrive.
// The charts are SVG drawn by the server: on a status event (over /ws/agent/), debounced, the
// page re-fetches /analytics/panel/ with the same filters and swaps the results in.
(() => {
  "use strict";

  const DEBOUNCE_MS = 1500;

  // Filters: applying one is a normal GET, so every view is a link that can be shared.
  const form = document.querySelector("[data-analytics-filters]");
  if (form) {
    form.querySelectorAll("select").forEach((select) => {
      select.addEventListener("change", () => form.requestSubmit());
    });
  }

  // Triage: "select all" toggles every row's checkbox; the button says how many are chosen.
  const resendForm = document.querySelector("[data-resend-form]");
  if (resendForm) {
    const boxes = () => [...resendForm.querySelectorAll('input[name="message"]')];
    const button = resendForm.querySelector("[data-bulk-resend]");
    const all = resendForm.querySelector("[data-select-all]");
    const update = () => {
      if (!button) return;
      const n = boxes().filter((b) => b.checked).length;
      button.textContent = `Resend ${n} selected`;
      button.disabled = n === 0;
    };
    if (all) {
      all.addEventListener("change", () => {
        boxes().forEach((b) => { b.checked = all.checked; });
        update();
      });
    }
    resendForm.addEventListener("change", update);
    resendForm.addEventListener("submit", () => { if (button) button.disabled = true; });
    update();
  }

  const configEl = document.getElementById("analytics-config");
  const panel = document.querySelector("[data-analytics-panel]");
  const connectionEl = document.querySelector("[data-connection]");
  const setConnection = (state) => {
    if (!connectionEl) return;
    connectionEl.dataset.connection = state;
    connectionEl.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline — reconnecting…" }[state];
  };
  if (!configEl || !panel) {
    if (connectionEl) connectionEl.hidden = true;
    return;
  }
  const config = JSON.parse(configEl.textContent);

  let timer = null;
  let inFlight = false;
  let again = false;
  const refresh = async () => {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const response = await fetch(config.panel_url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        panel.innerHTML = await response.text();
        panel.dataset.refreshed = String(Number(panel.dataset.refreshed || 0) + 1);
      }
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  };

  let socket = null;
  let failures = 0;
  const connect = () => {
    setConnection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws/agent/`);
    socket = ws;
    ws.addEventListener("open", () => {
      // Statuses may have arrived while the socket was down: read the numbers again.
      if (failures > 0) schedule();
      failures = 0;
      setConnection("live");
    });
    ws.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      const events = data.type === "events" ? data.events : [data];
      if (events.some((e) => e.type === "message.status" || e.type === "message.created")) schedule();
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      setConnection("offline");
      const delay = Math.min(30000, 1000 * 2 ** failures++) * (0.8 + Math.random() * 0.4);
      setTimeout(connect, delay);
    });
  };
  connect();
})();
