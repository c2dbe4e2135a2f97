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
  // An inline SVG, not an emoji: machines without an emoji font showed an empty box.
  const SVG = "http://www.w3.org/2000/svg";
  const icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "28");
  icon.setAttribute("height", "28");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  const bubble = document.createElementNS(SVG, "path");
  bubble.setAttribute(
    "d",
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
  );
  bubble.setAttribute("fill", "currentColor");
  icon.append(bubble);
  for (const cx of [8, 12, 16]) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", String(cx));
    dot.setAttribute("cy", "11");
    dot.setAttribute("r", "1.4");
    dot.setAttribute("fill", "#7c3aed");
    icon.append(dot);
  }
  button.append(icon);
  button.style.cssText =
    "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#7c3aed;color:#fff;cursor:pointer;z-index:2147483647;display:grid;place-items:center;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.3)";
  button.addEventListener("click", () => {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    button.setAttribute("aria-label", frame.hidden ? "Open chat" : "Close chat");
  });

  document.body.append(frame, button);
})();
