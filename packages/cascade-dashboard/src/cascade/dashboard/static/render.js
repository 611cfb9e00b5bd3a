// Drawing the live state (live.js keeps it): the connection, a page of runs, the open run's
// page (runpage.js), a page of engines, the held tasks (decisions.js), the constraints
// (constraints.js), and the pagers' counts; at most once per animation frame (repaint.js).
// Every string from the broker reaches the page through textContent or setAttribute only.
import { renderAttention } from "./attention.js";
import { renderHeldMatches } from "./bulkdecide.js";
import { renderConstraints } from "./constraints.js";
import { renderHeld } from "./decisions.js";
import { $, el, fillTable, row, runButton, safeClass, span, updateRows } from "./dom.js";
import { clock, count, seconds } from "./format.js";
import { connecting, live, ROWS, select, selected, view } from "./live.js";
import { renderRunPage } from "./runpage.js";
import { runRow, stateCounts, statusWithLine, tallyText } from "./states.js";
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
  // recorders that do not keep up with the broker, as they noted it in the history: now,
  // not only in the runs' missing counts afterwards
  $("recorders").textContent = (live.recorders || []).map(recorderBehind).join(" · ");
  for (const id of ["missed", "refused", "silent", "recorders"]) $(id).hidden = !$(id).textContent; // none empty
  $("mode").textContent = live.controls ? "controls enabled" : "read-only";
  for (const id of ["c-apply", "c-resume"]) $(id).disabled = !live.controls;
  $("token-label").hidden = !live.controls || signedIn; // a session needs no token
}

// "recorder rec-1 behind since 13:02:11: 45,000 queued (12 s), 1,200 dropped, 3,000 shed"
function recorderBehind(r) {
  const lost = [[r.dropped, "dropped"], [r.shed, "shed"]].filter(([n]) => n)
    .map(([n, what]) => ", " + count(n) + " " + what).join("");
  return "recorder " + r.recorder + " behind since " + clock(r.behind_since) + ": " +
    count(r.queued) + " queued (" + seconds(r.lag) + ")" + lost;
}

// The worst few sources of a list, and how many more there are (every one: Problems).
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
    // a run and its reruns and carry-ons are one row, the latest's, with their line of work
    const said = statusWithLine(run, (runId) => runButton(runId, "link", () => select(runId)));
    const tr = runRow([open, run.name == null ? span("-", "note") : run.name, run.project_id,
      said, run.origin, bar,
      run.finished + "/" + (run.total ?? "?"), counts, run.started,
      run.started ? seconds(end - run.started) : "-", run.source || "-", run.error]);
    tr.setAttribute("data-run-id", run.run_id);
    if (run.run_id === selected) tr.className = "selected";
    return tr;
  });
  updateRows($("r-live"), rows); // in place: a selection, a focus in a row survive the clock's tick
  if (progressSeen.size > 4 * ROWS + 100) { // runs come and go: keep those still listed
    for (const id of progressSeen.keys()) if (!live.runs.byId.has(id)) progressSeen.delete(id);
  }
  $("no-runs").hidden = runs.length > 0;
  $("no-runs").textContent = live.runs.total ? "no run matches" : "waiting for telemetry";
  renderPager("runs", "runs", runs.length, live.runs, view.runsAfter.length);
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

// An engine's live runs, as its last summary counts them, and the runs lost with it (an offline
// engine runs none: "0 · 2 runs lost (1 carried on)").
function liveRunsText(e) {
  const s = e.summary;
  const lost = e.lost && e.lost.runs ? count(e.lost.runs) + (e.lost.runs === 1 ? " run" : " runs") +
    " lost (" + count(e.lost.carried_on) + " carried on)" : "";
  const running = s ? count(s.live_runs) : "-";
  return lost ? running + " \u00b7 " + lost : running;
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
      liveRunsText(e),
      s ? tallyText(s.tasks) : "-",
      s ? s.events_per_s.toFixed(1) : "-",
      s ? count(s.dropped) : "-",
    ]);
    tr.setAttribute("data-source", e.source);
    return tr;
  }));
  renderPager("engines", "engines", engines.length, live.engines, view.enginesAfter.length);
  if (document.activeElement !== $("e-name")) $("e-name").value = view.engine;
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
  renderHeldMatches();
  renderAttention();
  renderRunPage();
  renderEngines();
  renderConstraints();
  window.cascadeRepaints += 1;
}
