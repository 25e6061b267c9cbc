// A job: each attempt's output, live, as the agent's narrative and as raw lines.
// Output is untrusted: every line becomes a text node, never markup.

import { api } from "../api.js";
import { fill, h } from "../dom.js";
import { duration, isFinal, stamp } from "../format.js";
import { followEvents, followLog } from "../live.js";
import { errorBox, fact, statusBadge } from "./common.js";

const MAX_LINES = 20000; // lines kept on the page per view; older ones are dropped from the top

/**
 * One event of an attempt as a line of its narrative (null: not part of it): what the
 * agent said, the tools it called, errors, retries, its result and how the job ended.
 */
export function narrate(event) {
  const detail = event.input || event.command || event.summary || "";
  switch (event.kind) {
    case "agent.session":
      return { kind: "session", text: `session ${event.session_id || "?"}${event.model ? ` · ${event.model}` : ""}` };
    case "agent.text":
      return { kind: "text", text: event.text };
    case "agent.tool_call":
      return { kind: "tool", text: `→ ${event.name}${detail ? `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}` : ""}` };
    case "agent.tool_result":
      if (event.permission_denied) return { kind: "error", text: "✗ tool call denied permission" };
      return event.is_error ? { kind: "error", text: "✗ tool call failed" } : null;
    case "agent.rate_limited":
      return { kind: "error", text: `rate limited${event.status ? ` (HTTP ${event.status})` : ""}${event.message ? `: ${event.message}` : ""}${event.retrying ? ", retrying" : ""}` };
    case "agent.error":
      return { kind: "error", text: `error: ${event.message || event.text || event.error || "the agent reported an error"}` };
    case "agent.result":
      return { kind: event.is_error ? "error" : "result", text: `${event.is_error ? "failed" : "result"}: ${event.text || ""}` };
    case "job.retrying":
      return { kind: "error", text: `retrying in ${event.delay_s}s: ${event.reason}` };
    case "job.finished":
      return { kind: event.status === "succeeded" ? "result" : "error", text: `job ${event.status}${event.error ? `: ${event.error}` : ""}` };
    case "budget.exceeded":
      return { kind: "error", text: `budget reached: ${event.spent} of ${event.limit} ${event.unit} (${event.action})` };
    default:
      return null;
  }
}

/** A log pane that keeps to the bottom while the reader is at the bottom. */
class LogPane {
  constructor(id, label) {
    this.list = h("ol", { class: "log", id, "aria-label": label, "aria-live": "off" });
    this.box = h("div", { class: "log-box", tabindex: "0" }, this.list);
    this.count = 0;
  }

  add(line) {
    const stick = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 8;
    const item = h(
      "li",
      { class: `line ${line.stream === "stderr" ? "stderr" : ""} ${line.kind ? `k-${line.kind}` : ""}`, "data-n": String(line.n), "data-stream": line.stream || "stdout" },
      line.stream === "stderr" ? h("span", { class: "stream-tag", title: "written to stderr" }, "stderr") : null,
      h("span", { class: "text" }, line.text),
    );
    this.list.append(item);
    this.count += 1;
    if (this.count > MAX_LINES) {
      this.list.firstElementChild.remove();
      this.count -= 1;
    }
    if (stick) this.box.scrollTop = this.box.scrollHeight;
  }
}

export function renderJob(view, ctx, runId, job) {
  const base = `/runs/${encodeURIComponent(runId)}/jobs/${encodeURIComponent(job)}`;
  const head = h("div", { class: "page-head" });
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "attempts" });
  const facts = h("dl", { class: "facts" });
  const state = h("span", { class: "follow-state", id: "follow-state", role: "status" });
  const modeRaw = h("button", { type: "button", role: "tab", id: "mode-raw", "aria-selected": "true" }, "Raw lines");
  const modeText = h("button", { type: "button", role: "tab", id: "mode-text", "aria-selected": "false" }, "Narrative");
  const panes = h("div", { class: "panes" });
  const note = h("div", { class: "message" });
  let followers = [];
  let attempt = null;
  let mode = ctx.params.get("view") === "text" ? "text" : "raw";
  let closed = false;

  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Runs"), " / ", h("a", { href: `/runs/${encodeURIComponent(runId)}`, class: "mono" }, runId), " / ", job),
    head,
    facts,
    note,
    h("div", { class: "log-head" }, tabs, h("div", { class: "modes", role: "tablist", "aria-label": "view" }, modeRaw, modeText), state),
    panes,
  );

  const stop = () => {
    for (const f of followers) f.close();
    followers = [];
  };

  const show = (states) => {
    const values = Object.values(states);
    if (values.some((v) => v && v.error)) {
      const failed = values.find((v) => v && v.error);
      state.textContent = failed.status === 400 || failed.status === 422 ? "not available from this server" : failed.error;
    } else if (values.every((v) => v === "complete")) state.textContent = "complete";
    else if (values.some((v) => v === "reconnecting")) state.textContent = "reconnecting…";
    else state.textContent = "● following live";
    state.dataset.state = state.textContent;
  };

  const open = () => {
    stop();
    modeRaw.setAttribute("aria-selected", String(mode === "raw"));
    modeText.setAttribute("aria-selected", String(mode === "text"));
    const pane = new LogPane(mode === "raw" ? "raw-log" : "text-log", mode === "raw" ? "raw output" : "narrative");
    fill(panes, pane.box);
    if (mode === "text") {
      // the narrative is the attempt's typed events, followed (and resumed) like any
      followers.push(
        followEvents({
          run: runId,
          after: 0,
          onFrame: (frame) => {
            const event = frame.event || {};
            if (event.job !== job || event.attempt !== attempt) return;
            const line = narrate(event);
            if (line) pane.add({ n: frame.seq, stream: "stdout", ...line });
            if (event.kind === "job.finished") show({ events: "complete" });
          },
        }),
      );
      show({ events: "live" });
      return;
    }
    const states = {};
    for (const stream of ["stdout", "stderr"]) {
      states[stream] = "connecting";
      followers.push(
        followLog({
          run: runId,
          job,
          attempt,
          stream,
          onLine: (line) => pane.add({ ...line, stream: line.stream || stream }),
          onState: (value) => {
            states[stream] = value;
            show(states);
          },
        }),
      );
    }
  };

  modeRaw.addEventListener("click", () => {
    mode = "raw";
    open();
  });
  modeText.addEventListener("click", () => {
    mode = "text";
    open();
  });

  let known = []; // the attempts drawn
  let latest = true; // following the newest attempt (not one the reader chose)

  const draw = (attempts) => {
    fill(
      tabs,
      attempts.map((a) => {
        const tab = h("button", { type: "button", role: "tab", "aria-selected": String(a.attempt === attempt), "data-attempt": String(a.attempt) }, `Attempt ${a.attempt}`, " ", statusBadge(a.status));
        tab.addEventListener("click", () => {
          latest = a.attempt === attempts[attempts.length - 1].attempt;
          attempt = a.attempt;
          draw(known);
          open();
        });
        return tab;
      }),
    );
    const chosen = attempts.find((a) => a.attempt === attempt) || {};
    fill(
      facts,
      fact("Tool", chosen.tool || "—"),
      fact("Model", chosen.model || "—"),
      fact("Started", stamp(chosen.started_at)),
      fact("Duration", duration(chosen.duration_s)),
      fact("Exit", chosen.exit_code === null || chosen.exit_code === undefined ? "—" : String(chosen.exit_code)),
      chosen.error ? fact("Error", h("span", { class: "error-text" }, chosen.error), { wide: true }) : null,
      chosen.argv && chosen.argv.length ? fact("Command", h("code", { class: "argv" }, chosen.argv.join(" ")), { wide: true }) : null,
    );
  };

  const load = async () => {
    try {
      const data = await api(`${base}/attempts`);
      if (closed) return;
      const attempts = data.attempts || [];
      const last = attempts.length ? attempts[attempts.length - 1] : null;
      fill(head, h("h1", {}, job, " ", statusBadge(last ? last.status : "waiting")));
      if (!last) {
        fill(note, h("p", { class: "muted" }, "This job has not started yet; its output shows here once it does."));
      } else {
        fill(note);
        const asked = Number(ctx.params.get("attempt"));
        const before = attempt;
        if (attempt === null) {
          latest = !asked || asked === last.attempt;
          attempt = asked && attempts.some((a) => a.attempt === asked) ? asked : last.attempt;
        } else if (latest) attempt = last.attempt; // a retry began: follow it
        known = attempts;
        draw(attempts);
        if (attempt !== before) open();
      }
      // until the job is over, look again for a new attempt (a retry) and fresh figures
      if (!last || !isFinal(last.status)) setTimeout(() => !closed && load(), 2000);
    } catch (error) {
      if (closed || error.status === 401) return;
      if (error.status === 404) setTimeout(() => !closed && load(), 1000);
      fill(note, errorBox(error));
    }
  };
  load();
  return {
    close() {
      closed = true;
      stop();
    },
  };
}
