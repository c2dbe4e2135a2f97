// Small DOM and HTTP helpers shared by the agent page's modules.
import { url } from "./config.js";

export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
};

const csrfToken = () => {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
};

const signIn = () => {
  window.location.assign(`${url("login")}?next=${encodeURIComponent(window.location.pathname)}`);
  throw new Error("signed out");
};

export const getJSON = async (target, options = {}) => {
  const response = await fetch(target, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) signIn();
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  return { ok: response.ok, status: response.status, body };
};

// URL-encoded, not multipart: Twisted (under daphne) rejects some multipart bodies with 400.
export const post = (target, data) =>
  getJSON(target, {
    method: "POST",
    body: data instanceof URLSearchParams ? data : new URLSearchParams(data ? new FormData(data) : undefined),
    headers: { "X-CSRFToken": csrfToken() },
  });

// A server-rendered fragment, parsed but not yet in the page (null when it could not be read).
export const getHTML = async (target) => {
  const response = await fetch(target, { credentials: "same-origin" });
  if (!response.ok) return null;
  const template = document.createElement("template");
  template.innerHTML = await response.text();
  return template.content;
};
