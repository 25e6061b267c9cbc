// The dependency graph of a run, drawn from each job's `needs` as SVG: one column per
// depth, nodes coloured by status (CSS classes), updated in place as events arrive.
// Past GROUP_OVER jobs it draws one box per depth with its jobs counted by status, so a
// 2,000-job run stays light; the job table below lists every job.

import { fill, h, s } from "./dom.js";

export const GROUP_OVER = 250;
const NODE_W = 168;
const NODE_H = 30;
const COL_GAP = 56;
const ROW_GAP = 10;
const PAD = 12;

const ORDER = ["running", "retrying", "ready", "waiting", "succeeded", "failed", "timed_out", "cancelled", "skipped"];

/** Each node's depth: 0 without needs, else one more than its deepest need. */
export function depths(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const memo = new Map();
  const depth = (id, seen = new Set()) => {
    if (memo.has(id)) return memo.get(id);
    if (seen.has(id)) return 0; // a cycle cannot plan; never loop on one
    seen.add(id);
    const node = byId.get(id);
    let d = 0;
    for (const need of (node && node.needs) || []) if (byId.has(need)) d = Math.max(d, depth(need, seen) + 1);
    memo.set(id, d);
    return d;
  };
  for (const n of nodes) depth(n.id);
  return memo;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function waitText(node) {
  return node.waiting_for && node.waiting_for.length ? `waits for ${node.waiting_for.join(", ")}` : "";
}

export class RunGraph {
  constructor(container, { onOpen }) {
    this.container = container;
    this.onOpen = onOpen;
    this.key = "";
    this.elements = new Map();
    this.groups = null;
  }

  /** Draw `nodes`, or recolour them in place when the jobs are the same. */
  update(nodes) {
    const key = nodes.map((n) => `${n.id}<${(n.needs || []).join(",")}`).join("|");
    if (key !== this.key) {
      this.key = key;
      if (nodes.length > GROUP_OVER) this.drawGroups(nodes);
      else this.draw(nodes);
    }
    if (this.groups) this.countGroups(nodes);
    else for (const node of nodes) this.setStatus(node.id, node.status, node);
  }

  /** One job's status changed (from a live event, before the next snapshot). */
  setStatus(id, status, node) {
    const el = this.elements.get(id);
    if (!el) return;
    el.g.setAttribute("class", `node st-${status}`);
    el.g.dataset.status = status;
    if (node) el.node = node;
    const wait = status === "waiting" || status === "ready" ? waitText(el.node) : "";
    el.title.textContent = `${id}: ${status}${wait ? ` — ${wait}` : ""}`;
    el.g.dataset.waitingFor = wait ? el.node.waiting_for.join(",") : "";
  }

  draw(nodes) {
    this.groups = null;
    this.elements.clear();
    const depth = depths(nodes);
    const columns = [];
    for (const node of nodes) {
      const d = depth.get(node.id) || 0;
      (columns[d] = columns[d] || []).push(node);
    }
    const place = new Map();
    columns.forEach((column, d) =>
      column.forEach((node, i) => place.set(node.id, { x: PAD + d * (NODE_W + COL_GAP), y: PAD + i * (NODE_H + ROW_GAP) })),
    );
    const width = PAD * 2 + columns.length * (NODE_W + COL_GAP) - COL_GAP;
    const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (NODE_H + ROW_GAP) - ROW_GAP;
    const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "dependency graph of the run's jobs" });
    const edges = s("g", { class: "edges" });
    svg.append(edges);
    for (const node of nodes) {
      const to = place.get(node.id);
      for (const need of node.needs || []) {
        const from = place.get(need);
        if (!from) continue;
        const x1 = from.x + NODE_W;
        const y1 = from.y + NODE_H / 2;
        const x2 = to.x;
        const y2 = to.y + NODE_H / 2;
        const mid = (x1 + x2) / 2;
        edges.append(s("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "data-from": need, "data-to": node.id }));
      }
    }
    for (const node of nodes) {
      const { x, y } = place.get(node.id);
      const title = s("title", {});
      const g = s(
        "g",
        { class: "node", "data-job": node.id, transform: `translate(${x},${y})`, tabindex: "0", role: "link", "aria-label": `job ${node.id}` },
        title,
        s("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
        s("circle", { cx: 14, cy: NODE_H / 2, r: 5 }),
        s("text", { x: 26, y: NODE_H / 2 + 4 }, truncate(node.id, 20)),
      );
      const open = () => this.onOpen(node.id);
      g.addEventListener("click", open);
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter") open();
      });
      this.elements.set(node.id, { g, title, node });
      svg.append(g);
    }
    fill(this.container, svg);
  }

  drawGroups(nodes) {
    this.elements.clear();
    const depth = depths(nodes);
    const levels = Math.max(0, ...depth.values()) + 1;
    this.groups = [];
    const list = h("div", { class: "graph-groups" });
    for (let d = 0; d < levels; d += 1) {
      const counts = h("div", { class: "group-counts" });
      const stack = h("div", { class: "stack" });
      const box = h("div", { class: "group", "data-depth": String(d) }, h("div", { class: "group-title" }, `depth ${d}`), stack, counts);
      this.groups.push({ counts, stack, box });
      list.append(box);
      if (d < levels - 1) list.append(h("div", { class: "group-arrow", "aria-hidden": "true" }, "→"));
    }
    this.depth = depth;
    fill(this.container, h("p", { class: "muted" }, `${nodes.length} jobs: grouped by depth in the graph; the table lists each one.`), list);
  }

  countGroups(nodes) {
    const tallies = this.groups.map(() => new Map());
    for (const node of nodes) {
      const t = tallies[this.depth.get(node.id) || 0];
      t.set(node.status, (t.get(node.status) || 0) + 1);
    }
    tallies.forEach((tally, d) => {
      const { counts, stack, box } = this.groups[d];
      const total = [...tally.values()].reduce((a, b) => a + b, 0);
      box.dataset.total = String(total);
      const statuses = ORDER.filter((st) => tally.get(st));
      fill(stack, statuses.map((st) => {
        const part = h("span", { class: `seg st-${st}`, title: `${tally.get(st)} ${st}` });
        part.style.flexGrow = String(tally.get(st));
        return part;
      }));
      fill(counts, statuses.map((st) => h("span", { class: `count st-${st}`, "data-status": st }, `${tally.get(st)} ${st.replace("_", " ")}`)));
    });
  }
}
