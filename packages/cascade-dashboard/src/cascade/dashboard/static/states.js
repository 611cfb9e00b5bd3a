// Tasks by state, as the page says them.
import { el, row, safeClass, span, titled } from "./dom.js";
import { at, clock, count, shortAt, shortId } from "./format.js";
import { originSaid } from "./origin.js";

// A task's states, as the wire names them (QUEUED: BLOCKED waiting for a worker of its
// executor, as HELD is BLOCKED held for a decision), in the order the page lists them.
export const STATES = ["RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "BLOCKED", "QUEUED", "HELD", "RETRYING"];

// A run's tasks by state as counts ("running 3", "failed 1"), each in its state's colour.
export function stateCounts(tasks) {
  const counts = el("span");
  for (const s of STATES) if (tasks[s]) counts.appendChild(span(s.toLowerCase() + " " + tasks[s], "count c-" + s));
  return counts;
}

// Tasks by state as a summary counts them ("running 3 · pending 5"), the states it has only.
// Tasks by state as the wire counts them: the held are among the blocked and the cancelled
// among the failed, so each is said as a part of its state ("blocked 3 (1 held)"), never as
// a state of its own beside it; a part a summary says is larger than its whole is cut to it.
const TALLY_PARTS = { blocked: "held", failed: "cancelled" };
export function tallyText(tasks) {
  const parts = new Set(Object.values(TALLY_PARTS));
  return Object.entries(tasks).filter(([s, n]) => n && !parts.has(s)).map(([s, n]) => {
    const part = Math.min(tasks[TALLY_PARTS[s]] || 0, n);
    return s + " " + count(n) + (part ? " (" + count(part) + " " + TALLY_PARTS[s] + ")" : "");
  }).join(" \u00b7 ") || "-";
}

// A decision as done, and the decisions people took on a run's held tasks as its engine
// applied them ("1 skipped by ops-1, 1 completed by ops-2"): what changed what a run came to,
// said beside its status wherever a run is listed.
export const DONE = { retry: "retried", skip: "skipped", complete: "completed", fail: "failed" };
export function decisionsText(run) {
  const said = (run.decisions || []).map((d) => count(d.count) + " " + (DONE[d.decision] || d.decision) +
    " by " + (d.by == null ? "someone unnamed" : d.by));
  // a live run lists 16 people's; the decisions of those beyond are counted together
  if (run.decisions_others) said.push(count(run.decisions_others) + " more by others");
  return said.join(", ");
}
// A run's line of work (the history's ``line``, and a live row's: its first run and each rerun,
// oldest first, each with its status and how many results it reused), the latest's outcome
// first: "line of work: latest Succeeded · first 58a88765cea2 Failed → rerun 9c1e0d2f3a4b
// Succeeded, 4 reused"; each run as ``linkOf(runId)`` makes it (a link, a button); ``more``: the
// runs a live row left out after the first ("→ 12 more reruns"); null for a run that has none.
export function lineOfWork(line, linkOf, more = 0) {
  if (!Array.isArray(line) || line.length < 2) return null;
  const said = el("span", null, "line-of-work");
  const latest = line[line.length - 1];
  said.append(span("line of work: latest "), span(latest.status || "not recorded", safeClass(latest.status)),
    span(" \u00b7 "));
  line.forEach((link, i) => {
    if (i === 1 && more > 0) said.appendChild(span(" \u2192 " + count(more) + " more reruns", "line-more"));
    const item = el("span", i ? " \u2192 rerun " : "first ", "line-run");
    item.setAttribute("data-line-run", link.run_id);
    item.append(linkOf(link.run_id), span(" " + (link.status || "not recorded"), safeClass(link.status)));
    if (link.reused) item.appendChild(span(", " + count(link.reused) + " reused", "reused"));
    said.appendChild(item);
  });
  return said;
}

// A row's status cell with its line of work under it, as every list of runs says them (a live
// row and a recorded one alike: one row a line of work, the latest run's).
export function statusWithLine(run, linkOf) {
  const status = statusCell(run);
  const line = lineOfWork(run.line, linkOf, run.line_more || 0);
  if (!line) return status;
  const said = el("span");
  said.append(status, el("br"), line);
  return said;
}

export function statusCell(run) {
  const cell = span(run.status, safeClass(run.status));
  const decided = decisionsText(run);
  const lost = lostText(run);
  if (!decided && !lost) return cell;
  const both = el("span");
  both.append(cell);
  if (decided) both.append(span(" \u00b7 " + decided, "decided"));
  if (lost) both.append(el("br"), lost);
  return both;
}

// A live run lost with its engine (the broker said it offline before the run ended): when,
// with which engine, and the run a server carried it on as, a link to its page ("lost at
// 06:12:03 UTC with server-a · carried on as 9c1e0d2f3a4b at server-b"); null for a run not lost.
export function lostText(run) {
  if (run.lost_at == null) return null;
  const said = el("span", "lost at " + clock(run.lost_at) + " with " + run.source, "lost-note");
  if (run.carried_on_as) {
    said.append(span(" \u00b7 carried on as "), runAnchor(run.carried_on_as),
      span(" at " + (run.carried_on_by || "another server")));
  } else {
    said.append(span(" \u00b7 not carried on (yet)", "note"));
  }
  return said;
}

// A link to a run's page that goes there without a reload (places.js: a[data-go]).
export function runAnchor(runId) {
  const link = el("a", shortId(runId), "run-link");
  link.setAttribute("href", "/runs/" + encodeURIComponent(runId));
  link.setAttribute("data-go", "");
  link.setAttribute("data-run-id", runId);
  link.title = runId;
  return link;
}

// A row of the Runs list (a live run's, a recorded one's: history.js) from its cells: run,
// name, project, status, origin (the run's origin), progress, done, tasks by state, started
// (epoch seconds), duration, engine, error (text). One line at 1,280 px: each cell cut to its
// column with an ellipsis, its whole text its title; the origin's title all of the origin.
export function runRow([open, name, project, status, origin, progress, done, counts, started, duration, engine, error]) {
  const from = originSaid(origin);
  const tr = row([open, name, project, status, span(from.text, "origin"), progress, done, counts,
    started == null ? "-" : shortAt(started), duration, engine, span(error || "", "error")]);
  if (from.title) tr.cells[4].title = from.title;
  if (started != null) tr.cells[8].title = at(started);
  return titled(tr);
}
