// Building the page without ever parsing a string as HTML: every piece of text, wherever
// it came from (a job's output, a flow name, an error message), becomes a text node.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("a", {href, class, onclick}, "text", child...): an element; strings become text. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Call fn at most once per `ms`, always with the latest arguments, never dropping the last call. */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  const run = () => {
    timer = null;
    if (pending) {
      pending = false;
      fn();
      timer = setTimeout(run, ms);
    }
  };
  return () => {
    pending = true;
    if (timer === null) run();
  };
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Like throttle, for an async `fn` whose cost grows with the data (a 2,000-job run's
 * snapshot): the next call waits at least `ms`, or twice as long as the last one took,
 * so a page never keeps a busy server busier.
 */
export function paced(fn, ms) {
  let running = false;
  let pending = false;
  let timer = null;
  let gap = ms;
  const run = async () => {
    timer = null;
    if (!pending || running) return;
    pending = false;
    running = true;
    const start = performance.now();
    try {
      await fn();
    } finally {
      running = false;
      gap = Math.max(ms, 2 * (performance.now() - start));
      timer = setTimeout(run, gap);
    }
  };
  return () => {
    pending = true;
    if (timer === null && !running) run();
  };
}
