// Drawing the live state (live.js keeps it): the connection, a page of runs, the open run, a
// page of engines, the held tasks (decisions.js), the constraints (constraints.js), and the
// pagers' counts; at most once per animation frame (repaint.js).
// Every string from the broker reaches the page through textContent or setAttribute only.
import { renderAttention } from "./attention.js";
import { renderConstraints } from "./constraints.js";
import { renderHeld } from "./decisions.js";
import { $, el, fillList, fillTable, replace, row, runButton, safeClass, span, traceback } from "./dom.js";
import { at, clock, count, seconds } from "./format.js";
import { historyGet, historyKnown, openRecorded } from "./history.js";
import { connecting, live, logTask, ROWS, select, selected, view } from "./live.js";
import { drawLogLines } from "./logs.js";
import { hasRunPage, noPlace, placePath } from "./places.js";
import { schedule } from "./repaint.js";
import { renderRunPage } from "./runpage.js";
import { scheduledText } from "./schedules.js";
import { decisionsText, stateCounts, statusCell, tallyText } from "./states.js";
import { drawTimeline } from "./timeline.js";
import { signedIn } from "./who.js";

const progressSeen = new Map(); // run id -> highest progress shown: it never goes backwards
window.cascadeRepaints = 0;     // read by the tests and the benchmark

function renderConnection() {
  const c = live.connection;
  const badge = $("connection");
  badge.textContent = c.connected ? "broker connected" : "broker disconnected";
  badge.className = "badge " + (c.connected ? "ok" : "bad");
  const ignored = [[live.rejected, "malformed"], [live.oversized, "oversized"]]
    .filter(([n]) => n).map(([n, what]) => n + " " + what);
  $("rejected").textContent = ignored.length ? ignored.join(", ") + " messages ignored" : "";
  $("missed").textContent = withRest((live.missed || [])
    .map((m) => "missed " + count(m.events) + " events from " + m.source +
      (m.since ? " since " + clock(m.since) : "")), live.missed_total);
  $("refused").textContent = withRest((live.refused || [])
    .map((r) => "refused " + count(r.messages) + " messages claiming " + r.source +
      ": " + Object.entries(r.reasons).map(([why, n]) => count(n) + " " + why).join(", ")),
  live.refused_total);
  // engines whose telemetry does not reach the dashboard, each with the likely cause
  $("silent").textContent = withRest((live.silent || []).map((s) => s.line),
    {sources: live.silent_total || 0});
  $("mode").textContent = live.controls ? "controls enabled" : "read-only";
  for (const id of ["c-apply", "c-resume"]) $(id).disabled = !live.controls;
  $("token-label").hidden = !live.controls || signedIn; // a session needs no token
}

// The worst few sources of a list, and how many more there are (the rest: /api/problems/...).
function withRest(said, total) {
  const more = total ? total.sources - said.length : 0;
  if (more > 0) said.push("and " + count(more) + " more sources");
  return said.join(" · ");
}

// The rows of a list's page, in the server's order (a row whose data is still on its way is
// left out until it comes).
function shown(list) { return list.order.map((id) => list.byId.get(id)).filter(Boolean); }

// "runs 26–50 of 1,234 matching (5,000 in all)", and the pager's buttons.
function renderPager(id, what, rows, list, page) {
  const first = page * ROWS + 1, last = first + rows - 1;
  const which = rows === 1 ? count(first) : count(first) + "\u2013" + count(last);
  let text = rows ? what + " " + which + " of " + count(list.matching) : "";
  if (rows && list.matching !== list.total) text += " matching (" + count(list.total) + " in all)";
  $(id + "-count").textContent = text;
  $(id + "-prev").disabled = connecting || page === 0;
  $(id + "-next").disabled = connecting || !list.next_after;
}

function renderRuns() {
  const runs = shown(live.runs);
  const rows = runs.map((run) => {
    const progress = Math.max(progressSeen.get(run.run_id) || 0, run.progress ?? 0); // null: total unknown
    progressSeen.set(run.run_id, progress);
    const open = runButton(run.run_id, "link", () => select(run.run_id));
    const bar = el("div", null, "progress");
    const fill = el("div");
    fill.style.width = (100 * progress).toFixed(1) + "%";
    bar.appendChild(fill);
    bar.setAttribute("data-progress", progress.toFixed(4));
    const counts = stateCounts(run.counts);
    // what this view lacks of the run until its engine answers ("joined late: 12 of 40 tasks known")
    if (run.partial) counts.appendChild(span(run.partial, "count partial"));
    // fleet mode: counted by its engine's summary, its events not read until it is opened
    if (run.from_summary) counts.appendChild(span("from summary", "count partial"));
    const end = run.ended || live.now;
    const tr = row([open, run.name == null ? span("-", "note") : run.name, run.project_id,
      statusCell(run), bar,
      run.finished + "/" + (run.total ?? "?"), counts, run.started ? at(run.started) : "-",
      run.started ? seconds(end - run.started) : "-", run.source || "-", span(run.error || "", "error")]);
    tr.setAttribute("data-run-id", run.run_id);
    if (run.run_id === selected) tr.className = "selected";
    return tr;
  });
  replace($("r-live"), rows);
  if (progressSeen.size > 4 * ROWS + 100) { // runs come and go: keep those still listed
    for (const id of progressSeen.keys()) if (!live.runs.byId.has(id)) progressSeen.delete(id);
  }
  $("no-runs").hidden = runs.length > 0;
  $("no-runs").textContent = live.runs.total ? "no run matches" : "waiting for telemetry";
  renderPager("runs", "runs", runs.length, live.runs, view.runsAfter.length);
}

let logsDrawn = -1; // live.logsChanged when the log panel was last drawn

function renderLogs() {
  if (logsDrawn === live.logsChanged) return;
  logsDrawn = live.logsChanged;
  drawLogLines($("logs-lines"), live.logs, { clear: true });
  $("logs-of").textContent = logTask ? "of " + logTask : "of every task";
  $("logs-all").hidden = !logTask;
  const note = live.logsNote || {};
  const said = [];
  if (note.dropped) said.push(note.dropped + " lines dropped by the engine");
  if (note.missed) said.push(note.missed + " lines missed on the way");
  if (note.let_go) said.push(note.let_go + " older lines no longer kept");
  if (note.skipped) said.push(note.skipped + " lines skipped (too many to send)");
  $("logs-note").textContent = said.join("; ");
}

// The run it reruns (a link: to its page in the history when there is one, else to it here), its
// served workflow and who started it, as its start said; with a history, a link to the run's
// recorded page (the runs that rerun it, its reused results: what the live view does not keep).
let lineageOf = null;
function renderLineage(run) {
  const origin = run.origin || {};
  const recorded = historyKnown === true;
  const key = [run.run_id, origin.rerun_of || "", origin.workflow || "", origin.schedule || "", recorded].join("\u0000");
  if (lineageOf === key) return; // drawn: a link redrawn at each frame could not be clicked
  lineageOf = key;
  const parts = [];
  if (origin.workflow) parts.push(span("workflow " + origin.workflow));
  if (origin.schedule) parts.push(span(" " + scheduledText(origin), "scheduled"));
  if (origin.issued_by) parts.push(span(" started by " + origin.issued_by));
  if (origin.rerun_of) {
    parts.push(span(" rerun of "));
    const link = runButton(origin.rerun_of, "link lineage", () => openRun(origin.rerun_of));
    link.setAttribute("data-run-id", origin.rerun_of);
    parts.push(link);
  }
  if (recorded) { // the runs that rerun it, and the results it reused: the history has them
    if (parts.length) parts.push(span(" \u00b7 "));
    parts.push(span("its line and reused results, as recorded, below", "note"));
  }
  $("run-lineage").replaceChildren(...parts);
}

// Another run of a line: its page.
function openRun(runId) {
  if (runId !== selected) select(runId);
}

// A run the address names that this dashboard does not hold (not heard of yet, or ended and
// no longer kept): said so, with where the history has it; drawn as soon as it is heard of.
let unknownOf = null;
function renderUnknownRun() {
  $("run-body").hidden = $("run-cancel").hidden = true;
  $("run-id").textContent = selected;
  $("run-name").textContent = $("run-trace").textContent = "";
  $("run-status").textContent = connecting ? "opening…" : "not heard of";
  $("run-status").className = "badge";
  $("run-lineage").replaceChildren();
  lineageOf = null;
  const note = $("run-unknown");
  note.hidden = false;
  const key = [selected, connecting, historyKnown].join("\u0000");
  if (unknownOf === key) return;
  unknownOf = key;
  if (connecting) { note.textContent = ""; return; }
  note.replaceChildren(span("This dashboard holds no run " + selected + " now: it shows here as " +
    "soon as its engine's telemetry arrives. "));
  if (historyKnown === false) {
    note.appendChild(span("A run that ended before this dashboard started, or is no longer kept, " +
      "is in the history cascade record keeps: this dashboard has none."));
  } else if (historyKnown) {
    lookUpRecorded(selected, key, note);
  }
}

// What the history recorded of a run the live view does not hold: its status and a link to it.
async function lookUpRecorded(runId, key, note) {
  let said;
  try {
    const { run } = await historyGet("/api/history/run", { id: runId });
    said = [span("The history recorded it: " + run.status +
      (run.ended_at == null ? "" : ", ended " + at(run.ended_at)) + ". ")];
    const link = el("a", "Open its recorded page", "recorded");
    link.setAttribute("href", placePath({ ...noPlace(), name: "run", run: run.run_id }));
    link.addEventListener("click", (event) => { event.preventDefault(); openRecorded(run.run_id); });
    said.push(link);
  } catch (error) {
    said = [span(error.status === 404 ? "The history has not recorded it either."
      : "history: " + error.message)];
  }
  if (unknownOf === key && !live.run) note.append(...said);
}

function renderRun() {
  const run = live.run;
  $("run").hidden = hasRunPage() || (!run && !selected); // the run's own page shows it instead
  if (hasRunPage()) return;
  if (!run) {
    if (selected) renderUnknownRun();
    return;
  }
  unknownOf = null;
  $("run-unknown").hidden = true;
  $("run-body").hidden = $("run-cancel").hidden = false;
  $("run-id").textContent = run.run_id;
  $("run-status").textContent = run.status;
  $("run-status").className = "badge " + safeClass(run.status);
  $("run-decided").textContent = decisionsText(run);
  $("run-trace").textContent = run.trace_id ? "trace " + run.trace_id : "";
  $("run-name").textContent = run.name == null ? "" : run.name;
  renderLineage(run);
  $("run-cancel").disabled = !live.controls || run.status !== "Running";
  const tasks = [...live.tasks.values()];
  drawTimeline($("timeline"), tasks, { until: run.ended || live.now, start: run.started || live.now,
    now: live.now, run: run.run_id, redraw: schedule });
  $("truncated").textContent = run.truncated ? run.truncated + " tasks not drawn (too many)" : "";
  renderLogs();
  const failures = tasks.filter((t) => t.state === "FAILED" || t.state === "HELD").map((f) => {
    const li = el("li");
    li.appendChild(span(f.name + (f.state === "HELD" ? " (held for a decision): " : ": "), "c-" + f.state));
    li.appendChild(span(f.error, "error"));
    if (f.traceback) li.appendChild(traceback(f.traceback));
    return li;
  });
  if (!failures.length && run.error) failures.push(el("li", run.error, "error"));
  fillList($("failures"), failures);
}

// Fleet mode: where the overview comes from, and the fleet's totals from the summaries.
function renderFleet() {
  const fleet = live.fleet, on = live.mode === "fleet" && fleet;
  $("fleet-mode").hidden = $("fleet-totals").hidden = !on;
  if (!on) return;
  $("fleet-mode").textContent = "Fleet mode: from " + count(fleet.engines - fleet.without_summary - (fleet.unconfirmed ?? 0)) +
    " engines' summaries (\u2265 " + count(fleet.threshold ?? 0) + " live runs); a run's events are read when you open it";
  $("fleet-totals").textContent = count(fleet.live_runs) + " live runs on " + count(fleet.online) + " of " +
    count(fleet.engines) + " engines \u00b7 tasks: " + tallyText(fleet.tasks) + " \u00b7 " +
    fleet.events_per_s.toFixed(1) + " events/s \u00b7 " + count(fleet.dropped) + " dropped" +
    (fleet.stranded ? " \u00b7 " + count(fleet.stranded) + " runs stranded on offline engines" : "");
}

function renderEngines() {
  const engines = shown(live.engines);
  fillTable($("engines"), engines.map((e) => {
    const s = e.summary; // its latest summary (null: it publishes none)
    const tr = row([
      e.source,
      span(e.status + (e.reason ? " (" + e.reason + ")" : ""), safeClass(e.status)),
      e.session == null ? "-" : e.session,
      seconds(live.now - e.last_seen) + " ago",
      s ? count(s.live_runs) : "-",
      s ? tallyText(s.tasks) : "-",
      s ? s.events_per_s.toFixed(1) : "-",
      s ? count(s.dropped) : "-",
    ]);
    tr.setAttribute("data-source", e.source);
    return tr;
  }));
  renderPager("engines", "engines", engines.length, live.engines, view.enginesAfter.length);
  // engines that ended cleanly a while ago are left out of the list but "ended cleanly"'s
  const ended = live.ended_cleanly || 0;
  $("ended-cleanly").hidden = !ended || view.engineStatus === "ended" || view.engineStatus === "offline";
  $("ended-count").textContent = count(ended) + (ended === 1 ? " engine" : " engines") + " ended cleanly";
}

export function paint() {
  if (!live.connection) return; // nothing received yet
  renderConnection();
  renderFleet();
  renderRuns();
  renderHeld();
  renderAttention();
  renderRunPage();
  renderRun();
  renderEngines();
  renderConstraints();
  window.cascadeRepaints += 1;
}
