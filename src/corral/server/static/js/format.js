// How numbers, money, times and statuses read on the page.

const FINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "skipped"]);

export function isFinal(status) {
  return FINAL.has(status);
}

/** A token count (the six counts arrive under two spellings: `input` and `input_tokens`). */
export function tok(tokens, name) {
  if (!tokens) return 0;
  const value = tokens[name] ?? tokens[`${name}_tokens`] ?? 0;
  return Number(value) || 0;
}

export function totalTokens(tokens) {
  return tok(tokens, "input") + tok(tokens, "output") + tok(tokens, "cache_read") + tok(tokens, "cache_write");
}

export function int(n) {
  return Number(n || 0).toLocaleString("en-US");
}

export function compact(n) {
  n = Number(n || 0);
  if (n < 10000) return int(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}

/** Money arrives as exact decimal text; shown with up to 4 decimals, never rounded to $0. */
export function usd(text) {
  if (text === null || text === undefined || text === "") return "—";
  const n = Number(text);
  if (n !== 0 && Math.abs(n) < 0.0001) return `<$0.0001`;
  return `$${n.toFixed(n >= 100 ? 2 : 4)}`;
}

/** The cost object of the API: {usd, source} or null; or separate usd/source fields. */
export function costOf(cost, source) {
  if (cost && typeof cost === "object") return { usd: cost.usd ?? null, source: cost.source ?? source ?? null };
  return { usd: cost ?? null, source: source ?? null };
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A time from the API (ISO text or POSIX seconds) as a Date. */
export function when(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function stamp(value) {
  const d = when(value);
  if (!d) return "—";
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function statusLabel(status) {
  return String(status || "unknown").replace("_", " ");
}
