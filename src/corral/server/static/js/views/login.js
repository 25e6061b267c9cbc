// Sign in with the server's token (`corral serve` prints it): it becomes an HttpOnly cookie.

import { api } from "../api.js";
import { h } from "../dom.js";

export function renderLogin(view, ctx) {
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true, "aria-describedby": "login-error" });
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card login", id: "login-form" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste the token that `corral serve` printed (or the one in its --token)."),
    h("label", { for: "token" }, "Token"),
    input,
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await api("/session", { method: "POST", body: { token: input.value.trim() }, quiet401: true });
    } catch (failure) {
      error.textContent = failure.status === 401 ? "That token is not this server's." : `Sign-in failed: ${failure.message}`;
      return;
    }
    const next = ctx.params.get("next") || "/";
    // only a path of this app, never an address elsewhere
    ctx.navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
  });
  view.append(form);
  input.focus();
}
