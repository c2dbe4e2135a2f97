// Compose, resend and start-a-conversation: the counter with the channel's limit, sending that
// survives a lost connection (an unsent bubble with Retry), and the 24-hour-window notice.
import * as clock from "./clock.js";
import { el, post } from "./dom.js";
import { scheduleListReload } from "./list.js";
import { applyStatus, messagesEl, renderDays, scrollToEnd, showBubbles } from "./messages.js";

export const compose = document.querySelector("[data-compose]");
const textarea = document.getElementById("compose-content");
const counter = compose?.querySelector("[data-counter]");
const maxLength = Number(compose?.dataset.maxLength || 4096);

export const setWindowClosed = (closed) => {
  if (!compose) return;
  compose.dataset.windowClosed = String(closed);
  compose.querySelector("[data-window-notice]").hidden = !closed;
  compose.querySelector("[data-compose-text]").hidden = closed;
  const templates = compose.querySelector("[data-compose-template]");
  if (templates && closed) templates.open = true;
};

const countChars = () => {
  if (!textarea || !counter) return true;
  const length = textarea.value.length;
  const over = length > maxLength;
  counter.textContent = over
    ? `Too long: ${length.toLocaleString()} / ${maxLength.toLocaleString()} characters`
    : `${length.toLocaleString()} / ${maxLength.toLocaleString()}`;
  counter.classList.toggle("counter--over", over);
  counter.classList.toggle("counter--near", !over && length > maxLength * 0.9);
  textarea.setAttribute("aria-invalid", String(over));
  const submit = textarea.form.querySelector("button[type=submit]");
  if (submit) submit.disabled = over;
  return !over;
};

const clientKey = () =>
  window.crypto?.randomUUID?.() ||
  `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;

let localCount = 0;
// The request never reached Tickmark (offline, server down): keep the text in a bubble that
// says so, with a Retry that sends it again. The one bubble drawn here: it is not on the server.
const unsentBubble = (form, values, reason) => {
  const id = `local-${++localCount}`;
  const li = el(
    "li",
    { class: "bubble bubble--outgoing bubble--unsent", "data-local-id": id, "data-created-at": new Date().toISOString() },
    el("div", { class: "bubble-body", text: values.get("content") || `Template ${values.get("template_name") || ""}` }),
    el("div", { class: "bubble-meta" }, clock.element(new Date().toISOString(), "time")),
    el(
      "div",
      { class: "failure", role: "alert", "data-failure": true },
      el("p", { class: "failure-title" }, el("strong", { text: "Not sent: Tickmark could not be reached." })),
      el("p", { class: "failure-explanation", text: reason }),
      el("button", { type: "button", class: "resend", "data-retry-local": id, text: "Retry" }),
    ),
  );
  li.unsent = { action: form.action, values };
  messagesEl.querySelector("[data-empty]")?.remove();
  messagesEl.append(li);
  renderDays();
  scrollToEnd();
  return li;
};

const sendFrom = async (form, values, errorEl) => {
  let result;
  try {
    result = await post(form.action || form, values);
  } catch (error) {
    if (error.message === "signed out") throw error;
    return { unreachable: true };
  }
  const { ok, body } = result;
  if (ok) {
    await showBubbles([body.message.id]);
    scheduleListReload();
  } else if (errorEl) {
    errorEl.textContent = body?.error?.message || "Could not send.";
    errorEl.hidden = false;
    if (body?.error?.code === "outside_customer_service_window") setWindowClosed(true);
  }
  return { ok };
};

export const retryUnsent = async (button) => {
  const li = button.closest("[data-local-id]");
  if (!li?.unsent) return;
  button.disabled = true;
  const errorEl = compose?.querySelector("[data-compose-error]");
  const outcome = await sendFrom(li.unsent.action, li.unsent.values, errorEl);
  if (outcome.unreachable) {
    button.disabled = false;
    li.querySelector(".failure-explanation").textContent = `Still unreachable (${new Date().toLocaleTimeString()}). Check your connection and retry.`;
    return;
  }
  li.remove();
  renderDays();
};

export const sendComposed = async (form) => {
  if (form.matches("[data-compose-text]") && !countChars()) return;
  const errorEl = compose.querySelector("[data-compose-error]");
  errorEl.hidden = true;
  const submit = form.querySelector("button[type=submit]");
  const values = new URLSearchParams(new FormData(form));
  // One key per typed message: a Retry after a lost answer cannot send it twice.
  values.set("client_key", clientKey());
  submit.disabled = true;
  try {
    const outcome = await sendFrom(form, values, errorEl);
    if (outcome.unreachable) {
      unsentBubble(form, values, "Your message is kept here; nothing was sent. Check your connection, then retry.");
    }
    if (outcome.ok || outcome.unreachable) {
      form.reset();
      form.querySelector("textarea, input:not([type=hidden])")?.focus();
    }
  } finally {
    submit.disabled = false;
    countChars();
  }
};

export const resend = async (form) => {
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const { ok, body } = await post(form.action, form);
    if (ok) {
      applyStatus(body.message);
      await showBubbles([body.message.id]); // the failure box goes, the attempt badge comes
    } else window.alert(body?.error?.message || "Could not resend.");
  } catch (_) {
    window.alert("Tickmark could not be reached. Check your connection and try again.");
  } finally {
    button.disabled = false;
  }
};

export const watchCompose = () => {
  if (!textarea) return;
  textarea.addEventListener("input", countChars);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (textarea.value.trim()) textarea.form.requestSubmit();
    }
  });
  countChars();
};

// ---------------------------------------------------------------------------------------------
// Start a conversation
// ---------------------------------------------------------------------------------------------
export const startDialog = document.querySelector("[data-start-dialog]");
const startForm = startDialog?.querySelector("[data-start-form]");

const syncStartForm = () => {
  if (!startForm) return;
  const option = startForm.querySelector("[data-start-inbox]").selectedOptions[0];
  const needsTemplate = option?.dataset.needsTemplate === "true";
  const templateBox = startForm.querySelector("[data-start-template]");
  templateBox.hidden = !needsTemplate;
  for (const input of templateBox.querySelectorAll("input")) input.required = needsTemplate;
  startForm.querySelector("[data-start-text]").hidden = needsTemplate;
  startForm.querySelector("#start-content").required = !needsTemplate;
  startForm.querySelector("[data-start-hint]").textContent = option?.dataset.addressHint || "";
  startForm.querySelector("[data-start-to]").placeholder = option?.dataset.addressHint || "";
};

export const openStart = () => {
  if (!startDialog) return;
  syncStartForm();
  startDialog.showModal();
  startForm.querySelector("[data-start-to]").focus();
};

export const watchStart = () => startForm?.querySelector("[data-start-inbox]").addEventListener("change", syncStartForm);

export const startConversation = async (form) => {
  const errorEl = form.querySelector("[data-start-error]");
  errorEl.hidden = true;
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const { ok, body } = await post(form.action, form);
    if (ok) {
      window.location.assign(body.url);
      return;
    }
    errorEl.textContent = body?.error?.message || "Could not start the conversation.";
    errorEl.hidden = false;
  } catch (_) {
    errorEl.textContent = "Tickmark could not be reached. Check your connection and try again.";
    errorEl.hidden = false;
  } finally {
    submit.disabled = false;
  }
};
