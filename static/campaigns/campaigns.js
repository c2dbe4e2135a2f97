// Tickmark campaigns: the list and a campaign's funnel move by themselves as statuses arrive.
//
// Live approach: the agent socket (/ws/agent/) already carries every "message.status" of the
// account, each naming its campaign (campaign_id). On one of this page's campaign (any
// campaign on the list), the page re-reads its panel (../live/panel.js): numbers and SVG drawn
// by the server from the campaign's maintained counts (a few indexed rows). Throttled, not
// debounced: at 2,000 status changes a second a debounce would never fire; a throttle re-reads
// at most once per THROTTLE_MS, whatever the rate. The write path does no extra work for an
// open page.
import { livePanel } from "../live/panel.js";

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

let creating = false;
const live = livePanel({
  configId: "campaigns-config",
  panelSelector: "[data-campaign-panel]",
  relevant: (event, config) => event.type === "message.status" && event.campaign_id
    && (!config.campaign_id || event.campaign_id === config.campaign_id),
  wait: THROTTLE_MS,
  throttle: true,
  onRead: (response) => { creating = response.headers.get("X-Campaign-Creating") === "1"; },
});
if (live) {
  creating = live.config.creating;
  setInterval(() => { if (creating && !document.hidden) live.schedule(); }, POLL_MS);
}
