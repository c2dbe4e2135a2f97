// What the server tells the page, read once from <script type="application/json"
// id="agent-config"> (inbox/views/presenters.py agent_config): the words for statuses, stages
// and ticks, and every URL the page calls. The page keeps no copy of either.

const node = document.getElementById("agent-config");
const config = JSON.parse(node?.textContent || "{}");

export const LABELS = config.labels || {}; // status → its label, e.g. for the tick's tooltip
export const STAGES = config.stages || {}; // stage → its label, in lifecycle order
export const STATUS_STAGE = config.status_stage || {}; // status → the stage whose time it sets
export const MEANINGS = config.meanings || {}; // tick → what it means, a lower-case sentence

// A URL by name; "{id}" in the server's pattern is replaced by the object's id.
export const url = (name, id) =>
  (config.urls?.[name] || "").replace("{id}", encodeURIComponent(id ?? ""));
