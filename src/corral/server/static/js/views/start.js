// Start a run: paste or upload a flow, see its errors inline (line and column) before
// anything runs, rehearse it or run it for real.

import { api } from "../api.js";
import { debounce, fill, h } from "../dom.js";
import { errorBox } from "./common.js";

const EXAMPLE = `version: 1
jobs:
  hello:
    run: echo hello
`;

export function renderStart(view, ctx) {
  const name = h("input", { type: "text", id: "flow-name", name: "filename", value: "flow.yaml", spellcheck: "false" });
  const upload = h("input", { type: "file", id: "flow-file", accept: ".yaml,.yml,.json,.toml,text/yaml,application/json" });
  const editor = h("textarea", { id: "flow-text", name: "flow", rows: "18", spellcheck: "false", wrap: "off", "aria-describedby": "flow-errors" }, EXAMPLE);
  const gutter = h("ol", { class: "gutter", "aria-hidden": "true" });
  const errors = h("ul", { id: "flow-errors", class: "flow-errors", "aria-live": "polite" });
  const verdict = h("p", { id: "flow-verdict", class: "verdict", role: "status" });
  const rehearse = h("input", { type: "checkbox", id: "rehearse", name: "rehearse", role: "switch" });
  const submit = h("button", { type: "submit", class: "primary", id: "start-run" }, "Start run");
  const note = h("div", { class: "message" });
  let valid = false;

  const drawGutter = (bad = new Map()) => {
    const count = editor.value.split("\n").length;
    const items = [];
    for (let i = 1; i <= count; i += 1) items.push(h("li", { class: bad.has(i) ? "bad" : "", title: bad.get(i) || "" }, String(i)));
    fill(gutter, items);
    gutter.scrollTop = editor.scrollTop;
  };
  editor.addEventListener("scroll", () => {
    gutter.scrollTop = editor.scrollTop;
  });

  const jump = (line, col) => {
    const lines = editor.value.split("\n");
    let at = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) at += lines[i].length + 1;
    at += Math.max(0, (col || 1) - 1);
    editor.focus();
    editor.setSelectionRange(at, at);
  };

  const showErrors = (list) => {
    const bad = new Map();
    const source = editor.value.split("\n");
    fill(
      errors,
      list.map((e) => {
        if (e.line) bad.set(e.line, e.message);
        const where = e.line ? `line ${e.line}${e.col ? `, column ${e.col}` : ""}` : "flow";
        const excerpt = e.line && source[e.line - 1] !== undefined ? source[e.line - 1] : null;
        const item = h(
          "li",
          { class: "flow-error", "data-line": e.line ? String(e.line) : "", "data-col": e.col ? String(e.col) : "" },
          h("button", { type: "button", class: "link where" }, where),
          ": ",
          h("span", { class: "msg" }, e.message),
          excerpt === null ? null : h("pre", { class: "excerpt" }, `${String(e.line).padStart(4)} | ${excerpt}\n     | ${" ".repeat(Math.max(0, (e.col || 1) - 1))}^`),
        );
        item.querySelector("button").addEventListener("click", () => jump(e.line || 1, e.col || 1));
        return item;
      }),
    );
    drawGutter(bad);
  };

  const check = async () => {
    const text = editor.value;
    try {
      const answer = await api("/validate", { method: "POST", body: { flow: text, filename: name.value || "flow.yaml" } });
      if (text !== editor.value) return; // typed since: a newer check is coming
      valid = true;
      showErrors([]);
      verdict.textContent = `Valid: ${answer.jobs} job${answer.jobs === 1 ? "" : "s"}.`;
      verdict.className = "verdict ok";
    } catch (error) {
      if (text !== editor.value) return;
      valid = false;
      const list = (error.body && error.body.error && error.body.error.errors) || [{ message: error.message }];
      verdict.textContent = error.code === "invalid_flow" ? `${list.length} problem${list.length === 1 ? "" : "s"} in this flow:` : "";
      verdict.className = "verdict bad";
      showErrors(list);
    }
  };
  const later = debounce(check, 350);
  editor.addEventListener("input", () => {
    drawGutter();
    later();
  });
  name.addEventListener("change", check);

  upload.addEventListener("change", async () => {
    const file = upload.files && upload.files[0];
    if (!file) return;
    editor.value = await file.text();
    name.value = file.name;
    drawGutter();
    check();
  });

  const form = h(
    "form",
    { class: "start", id: "start-form" },
    h("div", { class: "row" }, h("label", { class: "field" }, h("span", {}, "File name"), name), h("label", { class: "field" }, h("span", {}, "Or upload a flow file"), upload)),
    h("div", { class: "editor" }, gutter, editor),
    verdict,
    errors,
    h("div", { class: "row" }, h("label", { class: "switch" }, rehearse, h("span", {}, "Rehearse: simulated agents, no real spend")), submit),
    note,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await check();
    if (!valid) return;
    submit.disabled = true;
    try {
      const answer = await api("/runs", { method: "POST", body: { flow: editor.value, filename: name.value || "flow.yaml", rehearse: rehearse.checked, policy: null } });
      ctx.navigate(`/runs/${encodeURIComponent(answer.run_id)}`);
    } catch (error) {
      if (error.code === "invalid_flow") showErrors(error.body.error.errors || []);
      else fill(note, errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });

  view.append(h("div", { class: "page-head" }, h("h1", {}, "Start a run")), form);
  drawGutter();
  check();
}
