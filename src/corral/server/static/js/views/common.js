// Pieces several pages share: status badges, cost with its source, progress bars.

import { h } from "../dom.js";
import { costOf, statusLabel, usd } from "../format.js";

export function statusBadge(status) {
  return h("span", { class: `badge st-${status || "unknown"}`, "data-status": status || "unknown" }, statusLabel(status));
}

/** A cost and where it came from: reported by the CLI, estimated by corral, or unpriced. */
export function costCell(cost, source) {
  const c = costOf(cost, source);
  if (c.usd === null && !c.source) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "cost", title: c.source ? `cost ${c.source}` : "" },
    usd(c.usd),
    c.source ? h("span", { class: `src src-${c.source}` }, c.source) : null,
  );
}

/** A bar filled to `part / whole`, with its text. */
export function bar(part, whole, { label = "", level = "" } = {}) {
  const fraction = whole > 0 ? Math.max(0, Math.min(1, part / whole)) : 0;
  const fillEl = h("span", { class: `bar-fill ${level}` });
  fillEl.style.width = `${(fraction * 100).toFixed(1)}%`;
  return h("span", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(whole), "aria-valuenow": String(part), "aria-label": label }, fillEl);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error && error.message ? error.message : String(error));
}

/** One term of a page's facts (a `dl.facts`). */
export function fact(term, value, { wide = false } = {}) {
  return h("div", { class: wide ? "fact wide" : "fact" }, h("dt", {}, term), h("dd", {}, value));
}
