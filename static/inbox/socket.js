// The live connection (the agent socket) and the re-read after every (re)connect, so a missed event
// never sticks. The frames are defined in channels_app/events.py (one schema per event, checked
// in tests/channels_app/test_events.py); this is the only place that reads them.
import { url } from "./config.js";
import { getJSON, post } from "./dom.js";
import { setWindowClosed } from "./compose.js";
import { scheduleListReload } from "./list.js";
import { applyStatus, bubbleOf, conversationId, needsRendering, showBubbles, shownVersion } from "./messages.js";

const connectionEl = document.querySelector("[data-connection]");
let socket = null;
let failures = 0;

export const currentSocket = () => socket;

// A message.status / message.created event as the page's message state (the messages.json
// shape): the event names the message `message_id` and the status time `status_updated_at`.
const stateOf = (event) => ({
  id: event.message_id,
  status: event.status,
  tick: event.tick,
  at: event.status_updated_at,
  version: event.version,
});

// Re-read the conversation: new messages and newer states come as server-rendered bubbles.
export const resync = async () => {
  scheduleListReload();
  if (!conversationId) return;
  const { ok, body } = await getJSON(url("messages", conversationId));
  if (!ok) return;
  const stale = [];
  const unread = [];
  for (const m of body.messages) {
    if (!bubbleOf(m.id) || m.version > shownVersion(m.id)) stale.push(m.id);
    if (m.direction === "incoming" && !m.seen) unread.push(m.id);
    applyStatus(m);
  }
  await showBubbles(stale);
  setWindowClosed(body.compose.window_closed);
  // An inbound message that came while the socket was not listening (page load, a dropped
  // socket) is in front of the agent now, as one a live event brought would be: read it.
  if (unread.length) markRead(unread);
};

// The server stamps the conversation's inbound messages read (and owes the provider a read
// receipt); the bubbles are read again to show their "Seen" mark.
const markRead = (ids) =>
  post(url("read", conversationId))
    .then(() => showBubbles(ids))
    .finally(scheduleListReload);

const handlers = {
  "message.status": (event) => {
    const state = stateOf(event);
    if (applyStatus(state) && needsRendering(state)) showBubbles([state.id]);
  },
  "message.created": (event) => {
    if (event.conversation_id === conversationId) {
      applyStatus(stateOf(event));
      if (!bubbleOf(event.message_id)) showBubbles([event.message_id]); // unless this page sent it
      if (event.direction === "incoming") {
        setWindowClosed(false);
        markRead([event.message_id]);
        return;
      }
    }
    scheduleListReload();
  },
};

const setConnection = (state) => {
  connectionEl.dataset.connection = state;
  connectionEl.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline — reconnecting…" }[state];
};

export const connect = () => {
  setConnection("connecting");
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${window.location.host}${url("socket")}`);
  socket = ws;
  ws.addEventListener("open", () => {
    failures = 0;
    setConnection("live");
    // Whatever happened while we were not listening (page load, a dropped socket) is read now.
    resync();
  });
  ws.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type !== "events") return; // "pong"
    for (const event of frame.events) handlers[event.type]?.(event);
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    setConnection("offline");
    const delay = Math.min(30000, 1000 * 2 ** failures++) * (0.8 + Math.random() * 0.4);
    setTimeout(connect, delay);
  });
};
