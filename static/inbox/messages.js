// The open conversation's bubbles. Every bubble is rendered by the server (_message.html, via
// the bubbles fragment); the page only inserts or replaces them, and paints ticks live.
import * as clock from "./clock.js";
import { url } from "./config.js";
import { el, getHTML } from "./dom.js";
import { paintTick, refreshPopover, remember, stateOfTick } from "./ticks.js";

const app = document.querySelector("[data-agent-app]");
export const conversationId = app?.dataset.conversationId ? Number(app.dataset.conversationId) : null;
export const messagesEl = app?.querySelector("[data-messages]") || null;

// message id → the version on screen; anything older that arrives later is ignored.
const versions = new Map();

export const bubbleOf = (id) =>
  messagesEl ? messagesEl.querySelector(`li.bubble[data-message-id="${CSS.escape(id)}"]`) : null;

export const shownVersion = (id) => versions.get(id) || 0;

// A "Today" / "Yesterday" / weekday / date line wherever the local day changes.
export const renderDays = () => {
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

export const scrollToEnd = () => messagesEl?.lastElementChild?.scrollIntoView({ block: "end" });

// Take a server-rendered bubble into the page's state: local times, its tick, its version.
// Return false when a live event already showed a newer state than the bubble's.
export const adopt = (li) => {
  clock.paint(li);
  const id = li.dataset.messageId;
  const version = Number(li.dataset.version);
  if (version < shownVersion(id)) return false;
  versions.set(id, version);
  const tick = li.querySelector("button.tick");
  if (tick) {
    const state = stateOfTick(tick);
    remember(state);
    paintTick(tick, state);
  }
  return true;
};

// Apply a status; return false when it is not newer than what the page shows.
export const applyStatus = (state) => {
  if (state.version <= shownVersion(state.id)) return false;
  versions.set(state.id, state.version);
  remember(state);
  const li = bubbleOf(state.id);
  if (li) {
    li.dataset.version = state.version;
    const button = li.querySelector("button.tick");
    if (button) paintTick(button, state);
    refreshPopover(state.id);
  }
  for (const span of document.querySelectorAll(`.conv-tick[data-message-id="${CSS.escape(state.id)}"]`)) {
    paintTick(span, state);
  }
  return true;
};

// Does the bubble need the server's rendering for this state (a failure box to add or remove)?
export const needsRendering = (state) => {
  const li = bubbleOf(state.id);
  return Boolean(li) && (state.tick === "failed" || li.classList.contains("bubble--failed"));
};

// Insert the messages the page lacks and replace those the server has newer (or as new and
// more complete: a failure's explanation), in the server's order.
const fetchBubbles = async (ids) => {
  if (!messagesEl || !conversationId || !ids.length) return;
  const params = new URLSearchParams();
  for (const id of ids) params.append("id", id);
  const fragment = await getHTML(`${url("bubbles", conversationId)}?${params}`);
  if (!fragment) return;
  let appended = false;
  for (const li of [...fragment.querySelectorAll("li.bubble")]) {
    const id = li.dataset.messageId;
    const current = bubbleOf(id);
    if (current) {
      if (Number(li.dataset.version) < shownVersion(id)) continue; // a live event overtook it
      const hadFocus = current.contains(document.activeElement);
      current.replaceWith(li);
      adopt(li);
      if (hadFocus) li.querySelector("button")?.focus();
      refreshPopover(id);
    } else {
      messagesEl.querySelector("[data-empty]")?.remove();
      messagesEl.append(li);
      appended = true;
      if (!adopt(li)) showBubbles([id]); // rendered before the newest status: read it again
    }
  }
  renderDays();
  if (appended) scrollToEnd();
};

// Ids asked for within one moment go in one request; resolves once they are on the page.
const wanted = new Set();
let pending = null;
export const showBubbles = (ids) => {
  for (const id of ids) wanted.add(id);
  pending ||= new Promise((resolve) => setTimeout(resolve, 30)).then(() => {
    const batch = [...wanted];
    wanted.clear();
    pending = null;
    return fetchBubbles(batch);
  });
  return pending;
};
