// Embed Tickmark's chat widget on any site:
//   <script src="https://tickmark.example.com/static/widget/embed.js" data-inbox="<inbox id>" async></script>
// Adds a chat button; the chat itself runs in an iframe served by Tickmark.
"use strict";

(() => {
  const script = document.currentScript;
  const inbox = script && script.dataset.inbox;
  if (!inbox) return;
  const origin = new URL(script.src, window.location.href).origin;

  const frame = document.createElement("iframe");
  frame.src = `${origin}/widget/${encodeURIComponent(inbox)}/`;
  frame.title = script.dataset.title || "Chat";
  frame.hidden = true;
  frame.style.cssText =
    "position:fixed;right:20px;bottom:90px;width:360px;height:520px;max-width:calc(100vw - 40px);" +
    "max-height:calc(100vh - 120px);border:0;border-radius:12px;box-shadow:0 10px 40px rgba(0,0,0,.25);" +
    "z-index:2147483646;background:#fff";

  const button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-label", "Open chat");
  button.textContent = "💬";
  button.style.cssText =
    "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#7c3aed;color:#fff;font-size:26px;cursor:pointer;z-index:2147483647;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.3)";
  button.addEventListener("click", () => {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    button.setAttribute("aria-label", frame.hidden ? "Open chat" : "Close chat");
  });

  document.body.append(frame, button);
})();
