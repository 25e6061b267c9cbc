// The dashboard's entry point: a small router over the paths the server hands to index.html.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { onConnection } from "./live.js";
import { renderJob } from "./views/job.js";
import { renderLogin } from "./views/login.js";
import { renderRun } from "./views/run.js";
import { renderRuns } from "./views/runs.js";
import { renderStart } from "./views/start.js";
import { renderUsage } from "./views/usage.js";

const view = document.getElementById("view");
let current = null; // the page shown: {close()} stops its live connections

const ROUTES = [
  [/^\/$|^\/runs\/?$/, "runs", () => renderRuns],
  [/^\/runs\/([^/]+)\/jobs\/([^/]+)\/?$/, "runs", (m) => (el, ctx) => renderJob(el, ctx, decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
  [/^\/runs\/([^/]+)\/?$/, "runs", (m) => (el, ctx) => renderRun(el, ctx, decodeURIComponent(m[1]))],
  [/^\/usage\/?$/, "usage", () => renderUsage],
  [/^\/start\/?$/, "start", () => renderStart],
  [/^\/login\/?$/, "login", () => renderLogin],
];

/** Go to a path of the app without reloading the page. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route();
}

function route() {
  if (current && current.close) current.close();
  current = null;
  const path = location.pathname;
  let page = null;
  let section = "";
  for (const [pattern, name, make] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      page = make(match);
      section = name;
      break;
    }
  }
  document.getElementById("nav").hidden = section === "login";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === section);
  }
  fill(view);
  if (!page) {
    view.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/" }, "Back to the runs")));
    return;
  }
  const ctx = { navigate, params: new URLSearchParams(location.search) };
  try {
    current = page(view, ctx) || null;
  } catch (error) {
    view.append(h("p", { class: "error" }, `This page failed: ${error.message}`));
  }
}

// links inside the app move without reloading (and so keep no socket open behind them)
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download") || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", route);

document.getElementById("signout").addEventListener("click", async () => {
  try {
    await api("/session", { method: "DELETE", quiet401: true });
  } catch {
    // signed out already
  }
  navigate("/login");
});

const badge = document.getElementById("conn");
onConnection((state) => {
  badge.textContent = state === "live" ? "● live" : state === "reconnecting" ? "reconnecting…" : "";
  badge.dataset.state = state;
});

route();
