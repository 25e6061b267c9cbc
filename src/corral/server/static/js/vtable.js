// A table that draws only the rows in view, so a run of 2,000 jobs scrolls as lightly
// as one of 20. Rows have one height; the scroller's spacer has the full height.

import { fill, h } from "./dom.js";

export class VirtualTable {
  /** columns: [{title, cls, cell(row) -> Node|string}]; key(row) names a row. */
  constructor(container, { columns, key, rowHeight = 32, onOpen }) {
    this.columns = columns;
    this.key = key;
    this.rowHeight = rowHeight;
    this.onOpen = onOpen;
    this.rows = [];
    this.head = h("div", { class: "vt-row vt-head", role: "row" }, columns.map((c) => h("div", { class: `vt-cell ${c.cls || ""}`, role: "columnheader" }, c.title)));
    this.body = h("div", { class: "vt-body", role: "rowgroup" });
    this.scroller = h("div", { class: "vt-scroll", tabindex: "0" }, h("div", { class: "vt-inner" }, this.head, this.body));
    this.count = h("p", { class: "muted vt-count" });
    fill(container, h("div", { class: "vt", role: "table", "aria-label": "jobs" }, this.scroller), this.count);
    this.scroller.addEventListener("scroll", () => this.paint(), { passive: true });
    window.addEventListener("resize", () => this.paint(), { passive: true });
  }

  set(rows) {
    this.rows = rows;
    this.body.style.height = `${rows.length * this.rowHeight}px`;
    // a short table is as tall as its rows; a long one scrolls in a box of at most 15 rows
    this.scroller.style.height = `${Math.min(15, Math.max(3, rows.length)) * this.rowHeight + 36}px`;
    this.count.textContent = `${rows.length} job${rows.length === 1 ? "" : "s"}`;
    this.paint();
  }

  paint() {
    const top = Math.max(0, this.scroller.scrollTop - this.head.offsetHeight);
    const height = this.scroller.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - 5);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / this.rowHeight) + 5);
    const drawn = [];
    for (let i = first; i < last; i += 1) {
      const row = this.rows[i];
      const el = h(
        "div",
        { class: "vt-row", role: "row", "data-key": this.key(row), "data-status": row.status || "" },
        this.columns.map((c) => h("div", { class: `vt-cell ${c.cls || ""}`, role: "cell" }, c.cell(row))),
      );
      el.style.transform = `translateY(${i * this.rowHeight}px)`;
      drawn.push(el);
    }
    fill(this.body, drawn);
  }
}
