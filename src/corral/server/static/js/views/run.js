// A run: its graph (live), budget bars, cost over time, the job table, cancel and resume.

import { api } from "../api.js";
import { fill, h, paced, throttle } from "../dom.js";
import { compact, duration, int, isFinal, stamp, tok, usd, when } from "../format.js";
import { RunGraph } from "../graph.js";
import { lineChart } from "../chart.js";
import { followEvents } from "../live.js";
import { VirtualTable } from "../vtable.js";
import { bar, costCell, errorBox, fact, statusBadge } from "./common.js";

// the status a job moves to with each lifecycle event (the next snapshot confirms it)
const STATUS_OF = {
  "job.waiting": (e) => e.status || "waiting",
  "job.started": () => "running",
  "job.retrying": () => "retrying",
  "job.skipped": () => "skipped",
  "job.finished": (e) => e.status,
};

/** Ask before doing something that cannot be undone; resolves true on "yes". */
export function confirmDialog(question, yes) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": question },
      h("form", { method: "dialog" }, h("p", {}, question), h("div", { class: "actions" }, h("button", { value: "no", type: "submit" }, "Keep it"), h("button", { value: "yes", type: "submit", class: "danger" }, yes))),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Budgets in any of the shapes a run document may give: a list, or {run, jobs}. */
export function budgetLines(budgets) {
  if (!budgets) return [];
  const list = [];
  const add = (scope, job, b) => list.push({ scope, job, unit: b.unit, limit: Number(b.limit), spent: Number(b.spent || 0), action: b.action, limitText: b.limit, spentText: b.spent });
  if (Array.isArray(budgets)) {
    for (const b of budgets) add(b.scope || (b.job ? "job" : "run"), b.job || null, b);
    return list;
  }
  const many = (v) => (Array.isArray(v) ? v : v ? [v] : []);
  for (const b of many(budgets.run)) add("run", null, b);
  for (const [job, bs] of Object.entries(budgets.jobs || {})) for (const b of many(bs)) add("job", job, b);
  return list;
}

function budgetRow(b) {
  const fraction = b.limit > 0 ? b.spent / b.limit : 0;
  const level = fraction >= 1 ? "over" : fraction >= 0.8 ? "near" : "";
  const text = b.unit === "usd" ? `${usd(b.spentText)} of ${usd(b.limitText)}` : `${int(b.spent)} of ${int(b.limit)} tokens`;
  return h(
    "div",
    { class: `budget ${level}`, "data-scope": b.scope, "data-job": b.job || "" },
    h("span", { class: "budget-name" }, b.scope === "run" ? "run" : b.job, ` · ${b.unit}`),
    bar(b.spent, b.limit, { label: `budget ${b.scope} ${b.unit}`, level }),
    h("span", { class: "num" }, text, b.action ? h("span", { class: "muted" }, ` (${b.action})`) : null),
  );
}

function jobColumns(waits) {
  const t = (name) => (row) => int(tok(row.tokens, name));
  return [
    { title: "Job", cls: "name", cell: (r) => h("a", { href: `${location.pathname.replace(/\/$/, "")}/jobs/${encodeURIComponent(r.name)}` }, r.name) },
    { title: "Status", cls: "status", cell: (r) => statusBadge(r.status) },
    { title: "Try", cls: "num narrow", cell: (r) => String(r.attempt || 0) },
    { title: "Tool", cls: "tool", cell: (r) => r.tool || "" },
    { title: "Model", cls: "model", cell: (r) => r.model || "" },
    { title: "In", cls: "num", cell: t("input") },
    { title: "Out", cls: "num", cell: t("output") },
    { title: "Cache r", cls: "num", cell: t("cache_read") },
    { title: "Cache w", cls: "num", cell: t("cache_write") },
    { title: "Tools", cls: "num narrow", cell: (r) => int(r.tool_calls ?? tok(r.tokens, "tool_calls")) },
    { title: "Cost", cls: "num", cell: (r) => costCell(r.cost, r.cost_source) },
    {
      title: "Last line",
      cls: "last",
      cell: (r) => {
        const w = waits.get(r.name);
        if (!isFinal(r.status) && w && w.length) return h("span", { class: "muted" }, `waits for ${w.join(", ")}`);
        return r.last_line || r.reason || "";
      },
    },
  ];
}

export function renderRun(view, ctx, runId) {
  const base = `/runs/${encodeURIComponent(runId)}`;
  const head = h("div", { class: "page-head" });
  const facts = h("dl", { class: "facts" });
  const note = h("div", { class: "message", role: "status" });
  const graphBox = h("div", { class: "graph-box", id: "graph" });
  const budgetsBox = h("div", { class: "budgets", id: "budgets" });
  const chartBox = h("div", { class: "chart-box", id: "cost-chart" });
  const tableBox = h("div", { id: "jobs" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel", disabled: true }, "Cancel run");
  const resume = h("button", { type: "button", id: "resume", disabled: true }, "Resume");
  const waits = new Map();
  const graph = new RunGraph(graphBox, { onOpen: (job) => ctx.navigate(`${base}/jobs/${encodeURIComponent(job)}`) });
  const table = new VirtualTable(tableBox, { columns: jobColumns(waits), key: (r) => r.name, onOpen: null });
  const spend = []; // {t, v}: the run's cost after each priced update
  let doc = null;
  let closed = false;
  const opened = Date.now();

  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Runs"), " / ", h("span", { class: "mono" }, runId)),
    head,
    facts,
    note,
    h("section", { class: "panel" }, h("h2", {}, "Graph"), graphBox),
    h("div", { class: "two" }, h("section", { class: "panel" }, h("h2", {}, "Budgets"), budgetsBox), h("section", { class: "panel" }, h("h2", {}, "Cost over time"), chartBox)),
    h("section", { class: "panel" }, h("h2", {}, "Jobs"), tableBox),
  );

  const drawHead = () => {
    const run = doc.run || doc;
    fill(
      head,
      h("h1", {}, run.flow_name || "run", " ", statusBadge(run.status), doc.rehearsal || run.rehearsal ? h("span", { class: "tag rehearsal" }, "rehearsal") : null),
      h("div", { class: "actions" }, resume, cancel),
    );
    cancel.disabled = run.status !== "running";
    resume.disabled = run.status === "running" || run.status === "succeeded";
    const total = (doc.jobs || []).length;
    const done = (doc.jobs || []).filter((j) => isFinal(j.status)).length;
    fill(
      facts,
      fact("Run", h("span", { class: "mono", id: "run-id" }, run.id || runId)),
      fact("Owner", doc.owner || run.user || "—"),
      fact("Jobs", `${done}/${total} done`),
      fact("Tokens", compact(Object.values(run.tokens || {}).reduce((a, b) => a + (Number(b) || 0), 0) - tok(run.tokens, "tool_calls"))),
      fact("Cost", costCell(run.cost)),
      fact("Started", stamp(run.started_at)),
      fact("Duration", duration(run.duration_s)),
    );
  };

  const drawBudgets = () => {
    if (doc.budgets === undefined) {
      fill(budgetsBox, h("p", { class: "muted" }, "This server does not report budgets."));
      return;
    }
    const lines = budgetLines(doc.budgets);
    fill(budgetsBox, lines.length ? lines.map(budgetRow) : h("p", { class: "muted" }, "This flow sets no budget."));
  };

  const drawChart = throttle(() => fill(chartBox, lineChart(spend, { label: "the run's cost over time", format: (v) => `$${v.toFixed(v < 1 ? 3 : 2)}` })), 500);

  const load = async () => {
    try {
      const [document, jobs] = await Promise.all([api(base), api(`${base}/jobs`)]);
      if (closed) return;
      doc = document;
      fill(note);
      const nodes = (doc.graph && doc.graph.nodes) || (doc.jobs || []).map((j) => ({ id: j.name, status: j.status, needs: [], waiting_for: [] }));
      waits.clear();
      for (const n of nodes) waits.set(n.id, n.waiting_for || []);
      drawHead();
      drawBudgets();
      graph.update(nodes);
      table.set(jobs.jobs || []);
    } catch (error) {
      if (closed || error.status === 401) return;
      // a run just submitted may not be on record for a moment: wait for it, briefly
      if (error.status === 404 && !doc && Date.now() - opened < 10000) {
        fill(note, h("p", { class: "muted" }, "Starting…"));
        setTimeout(refresh, 300);
        return;
      }
      fill(note, errorBox(error));
    }
  };
  const refresh = paced(load, 700);

  const act = async (what, question, yes) => {
    if (!(await confirmDialog(question, yes))) return;
    try {
      const answer = await api(`${base}/${what}`, { method: "POST" });
      fill(note, h("p", { class: "ok" }, what === "cancel" ? "Cancelling: running jobs get SIGTERM, then SIGKILL after their grace period." : "Resumed."));
      if (what === "resume" && answer && answer.run_id && answer.run_id !== runId) ctx.navigate(`/runs/${encodeURIComponent(answer.run_id)}`);
      refresh();
    } catch (error) {
      fill(note, errorBox(error));
    }
  };
  cancel.addEventListener("click", () => act("cancel", `Cancel run ${runId}? Its running jobs are stopped and no new job starts.`, "Cancel the run"));
  resume.addEventListener("click", () => act("resume", `Resume run ${runId}? Jobs that did not succeed run again.`, "Resume"));

  load();
  drawChart();
  // the whole history of the run, then what happens next: job colours move at once, the
  // cost chart grows, and the snapshot is fetched again (at most every 0.7 s)
  const live = followEvents({
    run: runId,
    after: 0,
    onFrame: (frame) => {
      const event = frame.event || {};
      const kind = event.kind || frame.type;
      if (STATUS_OF[kind] && event.job) graph.setStatus(event.job, STATUS_OF[kind](event));
      if (kind === "spend.updated" && event.run_cost && event.run_cost.usd !== null && event.run_cost.usd !== undefined) {
        spend.push({ t: when(frame.ts) || new Date(), v: Number(event.run_cost.usd) });
        drawChart();
      }
      refresh();
    },
  });
  // a slow look regardless while the run is live, so a quiet socket never leaves it stale
  const poll = setInterval(() => {
    if (!doc || (doc.run || doc).status === "running") refresh();
  }, 3000);
  return {
    close() {
      closed = true;
      clearInterval(poll);
      live.close();
    },
  };
}
