// Where a run came from, in a word or two, as the Runs list's "origin" column says it (the
// CLI's `cascade runs` says a schedule's slot so): the schedule and the slot it fills, the run
// a server carried on after its engine died, the run it reruns, the person (or token) whose
// request started it, else "-" (a script's engine.run). From the run's origin (docs/protocol.md:
// ENGINE_STARTED's ``origin``), live or recorded alike; the cell's title says it, then all of it.
import { shortId } from "./format.js";

// {text, title}: the cell's words and all the origin says.
export function originSaid(origin) {
  if (!origin || typeof origin !== "object") return { text: "-", title: "" };
  const text = (value) => (value == null ? "" : String(value));
  const by = origin.issued_by ? " by " + text(origin.issued_by) : "";
  const parts = [];
  if (origin.schedule) {
    parts.push("schedule " + text(origin.schedule) + (origin.scheduled_for ? " " + slotShort(text(origin.scheduled_for)) : ""));
  }
  if (origin.carried_on_from) {
    parts.push("carry-on of " + shortId(text(origin.carried_on_from)) +
      (origin.lost_engine ? " (" + text(origin.lost_engine) + " died)" : ""));
  }
  if (origin.rerun_of) parts.push("rerun of " + shortId(text(origin.rerun_of)) + by);
  else if (origin.request_id && !origin.schedule && !origin.carried_on_from) parts.push("started" + (by || " by someone unnamed"));
  if (!parts.length && origin.workflow) parts.push("workflow " + text(origin.workflow));
  const told = [];
  for (const [key, value] of Object.entries(origin)) {
    if (value != null && key !== "params") told.push(key + ": " + (typeof value === "object" ? JSON.stringify(value) : text(value)));
  }
  const said = parts.join(" \u00b7 ") || "-";
  return { text: said, title: told.length ? said + "\n" + told.join("\n") : "" };
}

// A slot (ISO, UTC) as the list has room for: "11-27 02:00" ("2026-11-27T02:00:00Z" else).
function slotShort(iso) {
  const found = /^\d{4}-(\d\d-\d\d)T(\d\d:\d\d)/.exec(iso);
  return found ? found[1] + " " + found[2] : iso;
}
