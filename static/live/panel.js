// A server-rendered panel that stays current as statuses arrive (the analytics and campaign
// pages). The page says which agent-socket events concern it; on one, the panel is read again
// from its URL (the config's panel_url) and swapped in whole: the numbers shown are always the
// stored ones, never deltas summed in the browser that a dropped frame would falsify. One read
// at a time; a change during a read asks for one more after it.
//
// wait: the re-read is debounced by this many ms, or throttled to one per wait (throttle: true —
// under a steady stream of events a debounce would never fire).
export const livePanel = ({ configId, panelSelector, relevant, wait, throttle = false, onRead }) => {
  const configEl = document.getElementById(configId);
  const panel = document.querySelector(panelSelector);
  const connectionEl = document.querySelector("[data-connection]");
  const setConnection = (state) => {
    if (!connectionEl) return;
    connectionEl.dataset.connection = state;
    connectionEl.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline — reconnecting…" }[state];
  };
  if (!configEl || !panel) {
    if (connectionEl) connectionEl.hidden = true;
    return null;
  }
  const config = JSON.parse(configEl.textContent);

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
        if (onRead) onRead(response);
        panel.dataset.refreshed = String(Number(panel.dataset.refreshed || 0) + 1);
      }
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = throttle
    ? () => {
      if (timer !== null) return; // a re-read is already due: it will see this change too
      timer = setTimeout(refresh, Math.max(0, last + wait - Date.now()));
    }
    : () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, wait);
    };

  let socket = null;
  let failures = 0;
  const connect = () => {
    setConnection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws/agent/`);
    socket = ws;
    ws.addEventListener("open", () => {
      // Statuses may have arrived while the socket was not listening — down, or not yet open
      // after the page was drawn (a status then would otherwise wait for the next one): read
      // the numbers again, as the inbox does after every connect.
      schedule();
      failures = 0;
      setConnection("live");
    });
    ws.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      const events = data.type === "events" ? data.events : [data];
      if (events.some((event) => relevant(event, config))) schedule();
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      setConnection("offline");
      const delay = Math.min(30000, 1000 * 2 ** failures++) * (0.8 + Math.random() * 0.4);
      setTimeout(connect, delay);
    });
  };
  connect();
  return { config, schedule };
};
