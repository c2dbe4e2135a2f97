// Tickmark delivery analytics: filters apply on change, numbers refresh live as statuses arrive.
// The charts are SVG drawn by the server: on a status event (over /ws/agent/), debounced, the
// page re-fetches /analytics/panel/ with the same filters and swaps the results in
// (../live/panel.js).
import { livePanel } from "../live/panel.js";

const DEBOUNCE_MS = 1500;

// Filters: applying one is a normal GET, so every view is a link that can be shared.
const form = document.querySelector("[data-analytics-filters]");
if (form) {
  const period = form.querySelector('[data-filter="period"]');
  form.querySelectorAll("select").forEach((select) => {
    select.addEventListener("change", () => {
      // Choosing a campaign shows all of it; leaving campaigns leaves "Whole campaign" too.
      if (select.dataset.filter === "campaign" && period) {
        if (select.value) period.value = "campaign";
        else if (period.value === "campaign") period.value = "7d";
      }
      form.requestSubmit();
    });
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

livePanel({
  configId: "analytics-config",
  panelSelector: "[data-analytics-panel]",
  relevant: (event) => event.type === "message.status" || event.type === "message.created",
  wait: DEBOUNCE_MS,
});
