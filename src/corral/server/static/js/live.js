// Live data from the server, resumed after any drop from the last thing received:
// the event WebSocket (cursor `seq`, sent back as `after`) and a job's followed log
// (cursor: how many lines of that stream we have, sent back as `offset`).

import { PREFIX } from "./api.js";

const status = new Set();
/** Listeners told "live" / "reconnecting" (the header's connection badge). */
export function onConnection(fn) {
  status.add(fn);
  return () => status.delete(fn);
}
function tell(state) {
  for (const fn of status) fn(state);
}

function backoff(attempt) {
  return Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
}

/**
 * Follow events over WS /api/v1/events. `run` limits them to one run; `after` is the
 * cursor to start after (null: from now for all runs, from the start for one run).
 * onFrame gets each event frame once, in order, across reconnects.
 */
export function followEvents({ run = null, after = null, onFrame }) {
  let cursor = after;
  let socket = null;
  let closed = false;
  let failures = 0;
  let missing = 0;
  let timer = null;

  const connect = () => {
    if (closed) return;
    const params = new URLSearchParams();
    if (run) params.set("run", run);
    if (cursor !== null && cursor !== undefined) params.set("after", String(cursor));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const qs = params.toString();
    socket = new WebSocket(`${scheme}//${location.host}${PREFIX}/events${qs ? `?${qs}` : ""}`);
    socket.onopen = () => {
      failures = 0;
      tell("live");
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === "heartbeat") return;
      if (frame.type === "resync" || frame.type === "reconnect") {
        // the server dropped us for falling behind, or is restarting: come back from there
        if (frame.after !== undefined && frame.after !== null) cursor = frame.after;
        socket.close();
        return;
      }
      if (frame.seq !== undefined && frame.seq !== null) {
        if (run && typeof frame.seq === "number" && typeof cursor === "number" && frame.seq <= cursor) return;
        cursor = frame.seq;
      }
      onFrame(frame);
    };
    socket.onclose = (event) => {
      socket = null;
      if (closed) return;
      // 44xx: refused (bad request, not signed in, no such run): the API calls say why.
      // 1000 on one run's stream: the run is over and everything was sent
      // (a run submitted a moment ago may not be on record yet: 4404 is retried briefly)
      if (event.code === 4404 && missing < 20) {
        missing += 1;
        timer = setTimeout(connect, 300);
        return;
      }
      if ((event.code >= 4400 && event.code < 4500) || (run && event.code === 1000)) {
        tell("idle");
        return;
      }
      tell("reconnecting");
      failures += 1;
      timer = setTimeout(connect, event.code === 4000 ? 200 : backoff(failures));
    };
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}

/**
 * Follow one stream of one attempt with GET .../logs?follow=true (NDJSON). Lines are
 * numbered from 1 in their stream; after a drop the follow starts again with the number
 * of lines we have as `offset`, so no line is lost or shown twice.
 * onLine gets {n, stream, text}; onEnd is called once the attempt's output is complete.
 */
export function followLog({ run, job, attempt, stream = "stdout", onLine, onEnd, onState }) {
  let offset = 0; // lines of this stream already shown
  let closed = false;
  let failures = 0;
  let controller = null;
  let timer = null;
  const base = `${PREFIX}/runs/${encodeURIComponent(run)}/jobs/${encodeURIComponent(job)}/logs`;
  const state = (s) => onState && onState(s);

  const accept = (line) => {
    if (typeof line.n !== "number" || line.n <= offset) return; // already shown
    offset = line.n;
    onLine(line);
  };

  const url = (follow) => {
    const q = new URLSearchParams({ attempt: String(attempt), stream, offset: String(offset), follow: String(follow) });
    return `${base}?${q}`;
  };

  // once a follow ends cleanly, one plain read says whether the attempt is over
  const settle = async () => {
    const response = await fetch(url(false), { credentials: "same-origin", signal: controller.signal });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const page = await response.json();
    for (const line of page.lines || []) accept(line);
    return Boolean(page.complete);
  };

  const connect = async () => {
    if (closed) return;
    controller = new AbortController();
    try {
      const response = await fetch(url(true), { credentials: "same-origin", signal: controller.signal });
      if (response.status >= 400 && response.status < 500) {
        const body = await response.json().catch(() => null);
        state({ error: (body && body.error && body.error.message) || `HTTP ${response.status}`, status: response.status });
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      state("live");
      failures = 0;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const text = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 1);
          if (!text.trim()) continue;
          let line;
          try {
            line = JSON.parse(text);
          } catch {
            continue;
          }
          if (line.type === "heartbeat") continue;
          accept(line);
        }
      }
      // a half line left in the buffer was cut by a drop: it comes again from `offset`
      if (await settle()) {
        state("complete");
        if (onEnd) onEnd();
        return;
      }
    } catch (error) {
      if (closed) return;
      failures += 1;
    }
    if (closed) return;
    state("reconnecting");
    timer = setTimeout(connect, backoff(failures));
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (controller) controller.abort();
    },
  };
}
