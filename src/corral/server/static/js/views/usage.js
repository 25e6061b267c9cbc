// Usage: spend and tokens grouped by model, tool, flow or day; charts, a table, the CSV.

import { api, PREFIX, query } from "../api.js";
import { fill, h } from "../dom.js";
import { barChart } from "../chart.js";
import { compact, int, tok, totalTokens, usd } from "../format.js";
import { errorBox } from "./common.js";

const GROUPS = ["model", "tool", "flow", "day", "job"];

export function renderUsage(view, ctx) {
  const params = new URLSearchParams(ctx.params);
  const by = h("select", { name: "by", id: "usage-by" }, GROUPS.map((g) => h("option", { value: g, selected: (params.get("by") || "model") === g }, g)));
  const since = h("input", { type: "date", name: "since", value: params.get("since") || "" });
  const until = h("input", { type: "date", name: "until", value: params.get("until") || "" });
  const rehearsals = h("input", { type: "checkbox", name: "include_rehearsals", checked: params.get("include_rehearsals") === "true" });
  const csv = h("a", { class: "button", id: "usage-csv", download: "corral-usage.csv" }, "Download CSV");
  const costChart = h("div", { class: "chart-box", id: "usage-cost" });
  const tokenChart = h("div", { class: "chart-box", id: "usage-tokens" });
  const body = h("tbody", { id: "usage-body" });
  const note = h("div", { class: "message" });
  const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);
  const form = h("form", { class: "filters" }, field("Group by", by), field("Since", since), field("Until", until), h("label", { class: "check" }, rehearsals, " include rehearsals"), csv);

  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Usage")),
    form,
    note,
    h("div", { class: "two" }, h("section", { class: "panel" }, h("h2", {}, "Cost (USD)"), costChart), h("section", { class: "panel" }, h("h2", {}, "Tokens"), tokenChart)),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "usage" },
        h("thead", {}, h("tr", {}, ["Group", "Attempts", "Input", "Output", "Cache read", "Cache write", "Reported", "Estimated", "Total known", "Unpriced"].map((t) => h("th", {}, t)))),
        body,
      ),
    ),
  );

  const filters = () => ({
    by: by.value,
    since: since.value ? `${since.value}T00:00:00Z` : null,
    until: until.value ? `${until.value}T23:59:59Z` : null,
    include_rehearsals: rehearsals.checked ? "true" : null,
  });

  const load = async () => {
    const f = filters();
    const shown = new URLSearchParams();
    for (const [k, v] of [["by", by.value], ["since", since.value], ["until", until.value], ["include_rehearsals", f.include_rehearsals]]) if (v) shown.set(k, v);
    history.replaceState(null, "", `/usage?${shown}`);
    csv.setAttribute("href", `${PREFIX}/usage.csv${query(f)}`);
    try {
      const data = await api(`/usage${query(f)}`);
      const rows = data.rows || [];
      const known = (r) => Number((r.cost && r.cost.known_usd) || 0);
      fill(costChart, barChart([...rows].sort((a, b) => known(b) - known(a)).slice(0, 20).map((r) => ({ label: r.key || "—", value: known(r), text: `${usd(r.cost && r.cost.known_usd)}${r.cost && r.cost.unpriced ? " + unpriced" : ""}` })), { label: "cost by group" }));
      fill(tokenChart, barChart([...rows].sort((a, b) => totalTokens(b.tokens) - totalTokens(a.tokens)).slice(0, 20).map((r) => ({ label: r.key || "—", value: totalTokens(r.tokens), text: compact(totalTokens(r.tokens)) })), { label: "tokens by group" }));
      fill(
        body,
        rows.map((r) =>
          h(
            "tr",
            { "data-key": r.key },
            h("td", {}, r.key || "—"),
            h("td", { class: "num" }, int(r.attempts)),
            ...["input", "output", "cache_read", "cache_write"].map((n) => h("td", { class: "num" }, int(tok(r.tokens, n)))),
            h("td", { class: "num" }, usd(r.cost && r.cost.reported_usd)),
            h("td", { class: "num" }, usd(r.cost && r.cost.estimated_usd)),
            h("td", { class: "num" }, usd(r.cost && r.cost.known_usd)),
            h("td", { class: "num" }, r.cost && r.cost.unpriced ? `${r.cost.unpriced} model(s)` : ""),
          ),
        ),
      );
      fill(note, rows.length ? null : h("p", { class: "muted" }, "Nothing recorded in this period."));
    } catch (error) {
      if (error.status !== 401) fill(note, errorBox(error));
    }
  };
  form.addEventListener("change", load);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
}
