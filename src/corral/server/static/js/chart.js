// Small SVG charts written for the dashboard: a line over time and horizontal bars.

import { h, s } from "./dom.js";

const W = 640;
const H = 200;
const M = { l: 64, r: 12, t: 12, b: 28 };

function ticks(max, count = 4) {
  if (max <= 0) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((k) => k >= raw) || raw;
  const out = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  return out;
}

/** A step line of `points` [{t: Date, v: number}] (cumulative cost over time). */
export function lineChart(points, { label, format }) {
  if (!points.length) return h("p", { class: "muted chart-empty" }, "Nothing spent yet.");
  const t0 = points[0].t.getTime();
  const t1 = Math.max(t0 + 1000, points[points.length - 1].t.getTime());
  const vmax = Math.max(...points.map((p) => p.v)) || 1;
  const ys = ticks(vmax);
  const top = ys[ys.length - 1] || 1;
  const x = (t) => M.l + ((t - t0) / (t1 - t0)) * (W - M.l - M.r);
  const y = (v) => H - M.b - (v / top) * (H - M.t - M.b);
  let d = `M${x(t0)},${y(0)}`;
  for (const p of points) {
    d += ` H${x(p.t.getTime()).toFixed(1)} V${y(p.v).toFixed(1)}`;
  }
  const svg = s("svg", { class: "chart line", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, preserveAspectRatio: "none" });
  for (const v of ys) {
    svg.append(s("line", { class: "grid", x1: M.l, x2: W - M.r, y1: y(v), y2: y(v) }), s("text", { class: "axis", x: M.l - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  const seconds = (t1 - t0) / 1000;
  svg.append(
    s("text", { class: "axis", x: M.l, y: H - 8 }, points[0].t.toISOString().slice(11, 19)),
    s("text", { class: "axis", x: W - M.r, y: H - 8, "text-anchor": "end" }, `+${seconds < 120 ? `${Math.round(seconds)}s` : `${Math.round(seconds / 60)}m`}`),
    s("path", { class: "series", d }),
  );
  return svg;
}

/** Horizontal bars: items [{label, value, text}], longest first. */
export function barChart(items, { label }) {
  if (!items.length) return h("p", { class: "muted chart-empty" }, "No data.");
  const max = Math.max(...items.map((i) => i.value)) || 1;
  const rowH = 22;
  const height = items.length * rowH + 8;
  const svg = s("svg", { class: "chart bars", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": label });
  items.forEach((item, i) => {
    const y = 4 + i * rowH;
    const width = Math.max(1, (item.value / max) * (W - 330));
    svg.append(
      s("text", { class: "axis", x: 170, y: y + 14, "text-anchor": "end" }, item.label.length > 26 ? `${item.label.slice(0, 25)}…` : item.label),
      s("rect", { class: "series", x: 178, y: y + 3, width, height: rowH - 8, rx: 2 }, s("title", {}, `${item.label}: ${item.text}`)),
      s("text", { class: "value", x: 184 + width, y: y + 14 }, item.text),
    );
  });
  return svg;
}
