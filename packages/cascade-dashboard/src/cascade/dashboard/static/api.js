// Asking the dashboard's API as the page's reader: with the token typed in (or none).
import { $, el } from "./dom.js";

// A header value is bytes: the token goes as its UTF-8 bytes, which the server compares.
export function bearer() {
  const token = $("token").value;
  return token ? { "Authorization": "Bearer " + String.fromCharCode(...new TextEncoder().encode(token)) } : {};
}

// The dashboard's answer to a request, as JSON (`body`, when given, goes as JSON); a refusal is
// thrown as an Error saying the dashboard's reason, its `status` the HTTP status.
export async function ask(method, url, body) {
  const headers = bearer();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) {
    const error = new Error(answer.error || response.statusText);
    error.status = response.status;
    error.answer = answer;
    throw error;
  }
  return answer;
}

// A control (a constraint, a cancel, a decision, a start) asked of the dashboard, said in its
// section's status line as it goes: `sending` while on its way, then what `said` makes of the
// answer (text, or text and elements), or "refused: " and why.
export async function control(status, { sending, method, url, body }, said) {
  status.textContent = sending;
  status.className = "note";
  try {
    const answer = await ask(method, url, body);
    status.replaceChildren(...[said(answer)].flat());
    status.className = "note ok";
  } catch (error) {
    status.textContent = "refused: " + error.message;
    status.className = "error";
    const moved = error.answer && error.answer.link; // a lost run's: the run that carries it on
    if (moved) {
      const link = el("a", "open " + error.answer.carried_on_as, "run-link");
      link.setAttribute("href", moved);
      link.setAttribute("data-go", "");
      status.append(" \u00b7 ", link);
    }
  }
}
