// The Constraints section: the constraints in force (each with its clear button) and the form
// that sets or resumes a scope; every control's answer is said in the section's status line. Every string from the broker reaches the page through textContent
// or setAttribute only.
import { control } from "./api.js";
import { $, el, fillTable, row, span } from "./dom.js";
import { clock, dueAt, paramsText, quoted } from "./format.js";
import { live } from "./live.js";

const NO_EXPIRY = 253402300799; // past year 9999: no expiry, as every reader treats it

// A constraint set or cleared: the answer said in the section's status line.
function constrain(method, url, body) {
  control($("control-status"), { sending: "sending…", method, url, body }, (answer) =>
    "done: " + (answer.said ? answer.said : answer.published
      ? answer.published.map((p) => p.type + " on " + p.topic).join(", ")
      : "cleared " + (answer.cleared.join(", ") || "nothing")));
}

function onApply(event) {
  event.preventDefault();
  const type = $("c-type").value;
  const value = $("c-value").value.trim();
  const ttl = $("c-ttl").value.trim();
  const params = type === "concurrency" ? { limit: value === "" ? null : Number(value) }
    : type === "rate_limit" ? { rate: value } : {};
  const reason = $("c-reason").value.trim();
  constrain("POST", "/api/constraints", { scope: $("c-scope").value.trim(), type, params,
    ttl: ttl ? Number(ttl) : null, reason: reason || null });
}

export function startControls() {
  $("control").addEventListener("submit", onApply);
  $("c-resume").addEventListener("click", () =>
    constrain("DELETE", "/api/constraints?scope=" + encodeURIComponent($("c-scope").value.trim())));
}

export function renderConstraints() {
  // Ticks move the clock between changes: a constraint may expire in between.
  const inForce = [...live.constraints.values()]
    .filter((c) => c.expires_at == null || c.expires_at > live.now)
    .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  fillTable($("constraints"), inForce.map((c) => {
    const params = paramsText(c.params);
    const expires = c.expires_at == null || c.expires_at > NO_EXPIRY ? "never"
      : dueAt(c.expires_at, live.now);
    const issued = [c.issued_by ? "by " + c.issued_by : "", c.issued_at ? clock(c.issued_at) : "",
      c.reason ? quoted(c.reason) : ""].filter(Boolean).join(" ") || "-";
    const clear = el("button", "clear");
    clear.disabled = !live.controls;
    clear.addEventListener("click", () => constrain("DELETE",
      "/api/constraints?scope=" + encodeURIComponent(c.scope) + "&type=" + encodeURIComponent(c.type)));
    const tr = row([c.scope, c.type, params, span(issued, "issued"), expires, clear]);
    tr.setAttribute("data-scope", c.scope);
    tr.setAttribute("data-type", c.type);
    return tr;
  }));
}
