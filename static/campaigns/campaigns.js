// Tickmark campaigns: the list and a campaign's funnel move by themselves as statuses arrive.
//
// Live approach: the agent socket (/ws/agent/) already carries every "message.status" of the
// account, each naming its campaign (campaign_id). On one of this page's campaign (any
// campaign on the list), the page re-reads its panel: numbers and SVG drawn by the server from
// the campaign's maintained counts (a few indexed rows). Throttled, not debounced: at 2,000
// status changes a second a debounce would never fire; a throttle re-reads at most once per
// THROTTLE_MS, whatever the rate. The write path does no extra work for an open page, and the
// numbers are always the stored ones, never deltas summed in the browser that a dropped or
// reordered frame would falsify.
(() => {
  "use strict";

  const THROTTLE_MS = 1000;
  // Creating messages publishes no status: while a campaign's messages are being created,
  // also re-read on a slow clock so that progress moves too. Everything after (sends,
  // deliveries, reads, failures, a cancel) arrives as statuses over the socket.
  const POLL_MS = 5000;

  // Cancelling cannot be undone: ask first (the form works without this script too).
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    } else if (button) {
      button.disabled = true;
    }
  });

  const configEl = document.getElementById("campaigns-config");
  const panel = document.querySelector("[data-campaign-panel]");
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

  let creating = config.creating;
  let timer = null;
  let last = 0;
  let inFlight = false;
  let again = false;
  const refresh = async () => {
    timer = null;
    if (inFlight) { again = true; return; }
    inFlight = true;
    last = Date.now();
    try {
      const response = await fetch(config.panel_url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) {
        panel.innerHTML = await response.text();
        creating = response.headers.get("X-Campaign-Creating") === "1";
        panel.dataset.refreshed = String(Number(panel.dataset.refreshed || 0) + 1);
      }
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = () => {
    if (timer !== null) return; // a re-read is already due: it will see this change too
    timer = setTimeout(refresh, Math.max(0, last + THROTTLE_MS - Date.now()));
  };
  setInterval(() => { if (creating && !document.hidden) schedule(); }, POLL_MS);

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
      const ours = (e) => e.type === "message.status" && e.campaign_id
        && (!config.campaign_id || e.campaign_id === config.campaign_id);
      if (events.some(ours)) schedule();
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
