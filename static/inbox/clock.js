// One clock for the whole agent UI: every time is the agent's local time, formatted here from
// the ISO time the server wrote in <time datetime="…">. A native ES module, no build step.

const DAY = 24 * 60 * 60 * 1000;

export const parse = (iso) => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
};

const startOfDay = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate());

// Whole local days between the date and today (0 = today, 1 = yesterday…).
const daysAgo = (date, now = new Date()) =>
  Math.round((startOfDay(now) - startOfDay(date)) / DAY);

// "14:05" — one 24-hour format everywhere (bubbles, list, tooltips, history, widget).
export const time = (date, seconds = false) =>
  date.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    ...(seconds ? { second: "2-digit" } : {}),
  });

// The full date and time, for tooltips: "Sunday, November 29, 2026 at 11:33:59 AM PST".
export const full = (date) =>
  date.toLocaleString([], {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  });

// "Today", "Yesterday", "Tuesday", then "Mon, Nov 2" (with the year when not this year).
export const dayLabel = (date, now = new Date()) => {
  const ago = daysAgo(date, now);
  if (ago === 0) return "Today";
  if (ago === 1) return "Yesterday";
  if (ago > 1 && ago < 7) return date.toLocaleDateString([], { weekday: "long" });
  const options = { weekday: "short", month: "short", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
};

// The conversation list: the time today, "Yesterday", the weekday this week, else the date.
export const short = (date, now = new Date()) => {
  const ago = daysAgo(date, now);
  if (ago === 0) return time(date);
  if (ago === 1) return "Yesterday";
  if (ago > 1 && ago < 7) return date.toLocaleDateString([], { weekday: "short" });
  const options = { month: "short", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
};

const FORMATS = {
  time: (date) => time(date),
  seconds: (date) => time(date, true),
  day: (date) => short(date),
  full: (date) => `${dayLabel(date)} ${time(date)}`,
  stamp: (date) => `${dayLabel(date)} ${time(date, true)}`,
};

// Paint every <time data-clock="…"> under root; the tooltip always has the full date.
export const paint = (root = document) => {
  for (const node of root.querySelectorAll("time[datetime][data-clock]")) {
    const date = parse(node.getAttribute("datetime"));
    if (!date) continue;
    node.textContent = (FORMATS[node.dataset.clock] || FORMATS.time)(date);
    node.title = full(date);
  }
};

// A <time> element for a script-built node, painted like the server-rendered ones.
export const element = (iso, format = "time") => {
  const node = document.createElement("time");
  node.setAttribute("datetime", iso || "");
  node.dataset.clock = format;
  const date = parse(iso);
  if (date) {
    node.textContent = FORMATS[format](date);
    node.title = full(date);
  }
  return node;
};

export const sameDay = (a, b) => a && b && daysAgo(a, b) === 0;
