// Runs: every run the history holds (dashboard, API or terminal), a run and its resumes
// as one line, live, with filters.

import { api, query } from "../api.js";
import { h, fill, throttle } from "../dom.js";
import { compact, duration, stamp, totalTokens } from "../format.js";
import { followEvents } from "../live.js";
import { bar, costCell, errorBox, statusBadge } from "./common.js";

const STATUSES = ["", "running", "succeeded", "failed", "cancelled"];

function filterForm(params, onChange) {
  const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);
  const status = h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s || "any")));
  const flow = h("input", { name: "flow", type: "search", placeholder: "flow name", value: params.get("flow") || "" });
  const since = h("input", { name: "since", type: "date", value: params.get("since") || "" });
  const until = h("input", { name: "until", type: "date", value: params.get("until") || "" });
  const rehearsal = h(
    "select",
    { name: "rehearsal" },
    [["", "all"], ["false", "real runs"], ["true", "rehearsals"]].map(([v, t]) => h("option", { value: v, selected: (params.get("rehearsal") || "") === v }, t)),
  );
  const form = h("form", { class: "filters", id: "run-filters" }, field("Status", status), field("Flow", flow), field("Since", since), field("Until", until), field("Kind", rehearsal));
  const changed = () => {
    const values = {};
    for (const control of [status, flow, since, until, rehearsal]) values[control.name] = control.value;
    onChange(values);
  };
  form.addEventListener("change", changed);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    changed();
  });
  return form;
}

// a run and its resumes are one line (as `corral runs`): its figures are the chain's
function resumes(run) {
  const chain = run.chain;
  if (!chain || !chain.resumes) return null;
  const title = `resumed ${chain.resumes}× from ${chain.origin}; figures of the whole chain`;
  return h("span", { class: "tag resumed", title, "data-origin": chain.origin }, `${chain.resumes} resume${chain.resumes > 1 ? "s" : ""}`);
}

function row(run) {
  const id = run.id || run.run_id;
  const total = run.jobs_total ?? (run.jobs && run.jobs.total) ?? 0;
  const done = run.jobs_done ?? 0;
  const tokens = totalTokens(run.tokens);
  return h(
    "tr",
    { "data-run": id, "data-status": run.status },
    h("td", {}, h("a", { href: `/runs/${encodeURIComponent(id)}`, class: "mono" }, id), run.rehearsal ? h("span", { class: "tag rehearsal", title: "a rehearsal: simulated agents, no real spend" }, "rehearsal") : null, resumes(run)),
    h("td", {}, run.flow_name || run.flow || ""),
    h("td", {}, statusBadge(run.status)),
    h("td", {}, run.owner || run.user || ""),
    h("td", { class: "progress" }, bar(done, total, { label: "jobs done" }), h("span", { class: "num" }, `${done}/${total}`)),
    h("td", { class: "num", title: `${tokens} tokens` }, compact(tokens)),
    h("td", { class: "num" }, costCell(run.cost, run.cost_source)),
    h("td", { class: "num" }, duration(run.duration_s)),
    h("td", { class: "when" }, stamp(run.started_at)),
  );
}

const HEAD = ["Run", "Flow", "Status", "Owner", "Progress", "Tokens", "Cost", "Duration", "Started (UTC)"];

export function renderRuns(view, ctx) {
  const params = new URLSearchParams(ctx.params);
  const body = h("tbody", { id: "runs-body" });
  const more = h("button", { type: "button", hidden: true }, "Show older runs");
  const message = h("div", { class: "message" });
  let cursor = null;
  let shown = 50;
  let closed = false;

  const filters = () => ({
    status: params.get("status"),
    flow: params.get("flow"),
    since: params.get("since") ? `${params.get("since")}T00:00:00Z` : null,
    until: params.get("until") ? `${params.get("until")}T23:59:59Z` : null,
    rehearsal: params.get("rehearsal"),
  });

  const load = async () => {
    try {
      const data = await api(`/runs${query({ ...filters(), limit: shown })}`);
      if (closed) return;
      fill(body, (data.runs || []).map(row));
      cursor = data.next_cursor;
      more.hidden = !cursor;
      fill(message, data.runs && data.runs.length ? null : h("p", { class: "muted empty" }, "No runs match. Start one from the terminal, the API or “Start a run”."));
    } catch (error) {
      if (!closed && error.status !== 401) fill(message, errorBox(error));
    }
  };
  const refresh = throttle(load, 1000);

  more.addEventListener("click", () => {
    shown += 50;
    load();
  });

  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), h("a", { href: "/start", class: "button primary" }, "Start a run")),
    filterForm(params, (values) => {
      for (const [k, v] of Object.entries(values)) {
        if (v) params.set(k, v);
        else params.delete(k);
      }
      const qs = params.toString();
      history.replaceState(null, "", qs ? `/?${qs}` : "/");
      load();
    }),
    h("div", { class: "table-wrap" }, h("table", { class: "runs" }, h("thead", {}, h("tr", {}, HEAD.map((t) => h("th", {}, t)))), body)),
    message,
    more,
  );
  load();
  // any event of any run may change this list: reload it, at most once a second
  const live = followEvents({ onFrame: refresh });
  // and a slow look regardless, so a quiet or broken socket never leaves the list stale
  const poll = setInterval(refresh, 5000);
  return {
    close() {
      closed = true;
      clearInterval(poll);
      live.close();
    },
  };
}
