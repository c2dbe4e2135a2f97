// The conversation list: re-read as server-rendered HTML whenever something changes.
import * as clock from "./clock.js";
import { url } from "./config.js";
import { getHTML } from "./dom.js";
import { conversationId } from "./messages.js";
import { paintTick } from "./ticks.js";

const list = document.querySelector("[data-conversation-list]");
const filters = document.querySelector("[data-filters]");

export const paintListTicks = () => {
  for (const span of list?.querySelectorAll(".conv-tick") || []) {
    paintTick(span, { tick: span.dataset.tick, status: span.dataset.status, at: span.dataset.at });
  }
};

const listQuery = () => {
  const params = filters ? new URLSearchParams(new FormData(filters)) : new URLSearchParams();
  for (const [key, value] of [...params]) if (!value) params.delete(key);
  return params;
};

let listRequest = 0;
export const reloadList = async () => {
  if (!list) return;
  const params = listQuery();
  if (conversationId) params.set("current", conversationId);
  const ticket = ++listRequest;
  const fragment = await getHTML(`${url("list")}?${params}`);
  if (!fragment || ticket !== listRequest) return; // a newer search is on its way
  list.replaceChildren(fragment);
  clock.paint(list);
  paintListTicks();
  list.setAttribute("aria-busy", "false");
};

let listTimer = null;
export const scheduleListReload = () => {
  clearTimeout(listTimer);
  listTimer = setTimeout(reloadList, 150);
};

// Typing in the search box narrows the list as you type, and the address keeps the filters.
export const watchFilters = () => {
  if (!filters) return;
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
};
