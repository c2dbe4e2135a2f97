// Tickmark agent inbox: live ticks over the agent socket, the status history, compose, resend,
// search, new conversations. Native ES modules, no build step, no inline script: words and
// URLs come from the server (config.js), bubbles are rendered by the server (messages.js), and
// every time is the agent's local time (clock.js).
import * as clock from "./clock.js";
import { openStart, resend, retryUnsent, sendComposed, startConversation, startDialog, watchCompose, watchStart } from "./compose.js";
import { paintListTicks, reloadList, watchFilters } from "./list.js";
import { adopt, messagesEl, renderDays, scrollToEnd } from "./messages.js";
import { connect, currentSocket, resync } from "./socket.js";
import { watchTemplatePicker } from "./templates.js";
import { hidePopover, popoverTarget, showPopover } from "./ticks.js";
import { dialog, openTimeline } from "./timeline.js";

const app = document.querySelector("[data-agent-app]");

if (app) {
  document.addEventListener("click", (event) => {
    const tick = event.target.closest("button.tick");
    if (tick) {
      openTimeline(tick.dataset.messageId);
      return;
    }
    const retry = event.target.closest("[data-retry-local]");
    if (retry) {
      retryUnsent(retry);
      return;
    }
    if (event.target.closest("[data-open-start]")) openStart();
  });
  for (const d of [dialog, startDialog]) {
    d?.addEventListener("click", (event) => {
      if (event.target === d) d.close(); // click on the backdrop
    });
  }

  const tickOf = (event) => event.target.closest?.("button.tick");
  document.addEventListener("pointerover", (event) => {
    const tick = tickOf(event);
    if (tick && tick !== popoverTarget()) showPopover(tick);
    else if (!tick && popoverTarget()) hidePopover();
  });
  document.addEventListener("focusin", (event) => {
    const tick = tickOf(event);
    if (tick) showPopover(tick);
    else if (popoverTarget()) hidePopover();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hidePopover();
  });
  messagesEl?.addEventListener("scroll", hidePopover, { passive: true });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const action = form.matches("[data-filters]")
      ? reloadList
      : form.matches("[data-resend]")
        ? resend
        : form.matches("[data-start-form]")
          ? startConversation
          : form.matches("[data-compose-text], [data-template-form]")
            ? sendComposed
            : null;
    if (!action) return;
    event.preventDefault();
    action(form);
  });

  watchFilters();
  watchCompose();
  watchStart();
  watchTemplatePicker();

  // Server-rendered times are written in UTC as a fallback; show the agent's local time.
  clock.paint(document);
  for (const li of app.querySelectorAll("li.bubble")) adopt(li);
  paintListTicks();
  renderDays();
  scrollToEnd();

  window.tickmark = {
    get socket() {
      return currentSocket();
    },
    resync,
  };
  connect();
}
