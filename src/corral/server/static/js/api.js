// The JSON API at /api/v1 (docs/api.md), signed in by the session cookie.

export const PREFIX = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.body = body;
  }
}

function signIn() {
  const here = location.pathname + location.search;
  if (location.pathname !== "/login") history.pushState(null, "", `/login?next=${encodeURIComponent(here)}`);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** One call: JSON in, JSON out; a 401 sends the browser to the sign-in page. */
export async function api(path, { method = "GET", body, signal, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Corral-CSRF"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(PREFIX + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  if (response.status === 204 || response.status === 202 && response.headers.get("content-length") === "0") return null;
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !quiet401) signIn();
    throw new ApiError(response.status, data);
  }
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
