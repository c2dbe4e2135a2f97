// Ticks: painting a tick from a message's state, and the popover that explains it.
// The state of a message on the page is { id, status, tick, at, version, stages } — the shape of
// messages.json; live events are turned into it in socket.js.
import * as clock from "./clock.js";
import { LABELS, MEANINGS, STAGES, STATUS_STAGE } from "./config.js";
import { el } from "./dom.js";

// message id → { tick, status, at, stages } for the tick popover.
const states = new Map();

export const labelFor = (status, iso) => {
  const date = clock.parse(iso);
  return `${LABELS[status] || status}${date ? ` ${clock.time(date, true)}` : ""}`;
};

// The tick shapes are server-rendered <template id="tick-svg-…"> elements (_tick_templates.html).
const tickSvg = (tick, label) => {
  const template = document.getElementById(`tick-svg-${tick}`);
  const svg = template.content.firstElementChild.cloneNode(true);
  svg.setAttribute("aria-label", label);
  svg.querySelector("title").textContent = label;
  return svg;
};

export const paintTick = (node, state) => {
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

// The state a server-rendered tick carries in its data attributes.
export const stateOfTick = (node) => {
  let stages = {};
  try {
    stages = JSON.parse(node.dataset.stages || "{}");
  } catch (_) {
    stages = {};
  }
  return { id: node.dataset.messageId, tick: node.dataset.tick, status: node.dataset.status, at: node.dataset.at, stages };
};

export const remember = (state) => {
  const previous = states.get(state.id) || { stages: {} };
  const stages = { ...previous.stages, ...(state.stages || {}) };
  // A live event carries only the new status' time: that is the time of its stage.
  const stage = STATUS_STAGE[state.status];
  if (stage && !state.stages && state.at) stages[stage] = stages[stage] || state.at;
  states.set(state.id, { tick: state.tick, status: state.status, at: state.at, stages });
};

// ---------------------------------------------------------------------------------------------
// Popover: hover or focus a tick to see what it means and when each stage happened.
// ---------------------------------------------------------------------------------------------
const popover = document.querySelector("[data-tick-popover]");
let popoverFor = null;

const sentence = (text) => (text ? text[0].toUpperCase() + text.slice(1) : "");

export const showPopover = (button) => {
  if (!popover) return;
  const state = states.get(button.dataset.messageId) || stateOfTick(button);
  const rows = [];
  for (const [stage, label] of Object.entries(STAGES)) {
    const iso = state.stages?.[stage] || (stage === "sent" && state.status === "sent" ? state.at : null);
    const date = iso ? clock.parse(iso) : null;
    if (!date) continue;
    rows.push(el("li", {}, el("span", { text: label }), " ", clock.element(iso, "stamp")));
  }
  popover.replaceChildren(
    el("strong", { text: LABELS[state.status] || state.status }),
    el("p", { text: sentence(MEANINGS[state.tick]) }),
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

export const hidePopover = () => {
  if (popover) popover.hidden = true;
  popoverFor = null;
};

export const popoverTarget = () => popoverFor;

// A tick that changed under an open popover: show the new state in place.
export const refreshPopover = (id) => {
  if (popoverFor?.dataset.messageId !== id) return;
  const current = document.querySelector(`button.tick[data-message-id="${CSS.escape(id)}"]`);
  if (current) showPopover(current);
  else hidePopover();
};
