// What the history holds (`--db URL`, else the file `cascade record` writes by default): the
// past runs in the Runs list with the filters of `cascade runs` ("runs whose logs contain" lists
// the runs by their text instead), a task's duration over time as an SVG chart (Tasks), the
// audit trail (Audit), the downloads, and the reads of the run's page (historyGet,
// attemptsList); where the history is, or why there is none and how to start one. Everything
// the history holds came from the broker, so every string reaches the page through
// textContent or setAttribute only, never as HTML.
import { ask, bearer } from "./api.js";
import { $, el, fillTable, row, runButton, safeClass, span, traceback, updateRows } from "./dom.js";
import { at, count, paramsText, quoted, seconds, shortId, took } from "./format.js";
import { live, ROWS } from "./live.js";
import { goTo, noPlace, placeOf } from "./places.js";
import { schedule } from "./repaint.js";
import { DONE, runRow, stateCounts, statusWithLine } from "./states.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const NO_HISTORY = "This dashboard has no history: run cascade record and give the dashboard --db URL.";
window.cascadeHistoryLoads = 0; // read by the tests

// The page's history reads under way at once: fewer than the dashboard lets one person have
// (READS_PER_PERSON, 4), so that the places reading side by side (the runs' list, the run's page,
// the counts in the header) wait for each other here instead of being refused (429).
const READS_AT_ONCE = 3;
let reading = 0;
const waiting = [];

function readSlot() {
  if (reading < READS_AT_ONCE) {
    reading += 1;
    return Promise.resolve();
  }
  return new Promise((go) => waiting.push(go));
}

function readDone() {
  const next = waiting.shift();
  if (next) next(); else reading -= 1; // a slot handed on as it is
}

export async function historyGet(path, params) {
  await readSlot();
  try {
    // with the token: its holder's queries come first, within their own share (not the address's)
    const answer = await ask("GET", withParams(path, params));
    window.cascadeHistoryLoads += 1;
    return answer;
  } finally {
    readDone();
  }
}

function problem(error) {
  $("h-problem").textContent = error ? "history: " + error.message : "";
}

// The Runs place's filters (runs.js keeps them as the address says), as the history's API
// names them, for the page of recorded runs shown (and one more row: whether there are more).
let recordedPage = 0;
function filters() {
  return {
    since: $("h-since").value, status: $("r-status").value, project: $("r-project").value.trim(),
    source: $("r-engine").value.trim(), name: $("r-name").value.trim(),
    trigger: $("r-trigger").value.trim(),
    logging: $("h-logging").value.trim(), limit: Math.min(MOST_RECORDED, (recordedPage + 1) * ROWS + 1),
  };
}
const MOST_RECORDED = 500; // the history's API lists at most this many runs at once

// A list's address with these parameters (the empty ones left out).
function withParams(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== "" && value != null) url.searchParams.set(key, value);
  }
  return url;
}

// The download links of the runs the filters pick (all of them, not the 200 shown), and of the
// task statistics: each an address to copy, fetched with the token when clicked.
function downloadLinks() {
  const { limit, ...picked } = filters();
  for (const format of ["csv", "jsonl"]) {
    const runs = withParams("/api/history/runs", { ...picked, format });
    $("h-runs-" + format).setAttribute("href", runs.pathname + runs.search);
  }
}

// Fetch a download (with the token: a team's dashboard read by a token needs it) and save it
// under the name the dashboard gave; say how many rows it held, and if more matched.
async function download(link) {
  const status = $("h-download");
  status.textContent = "downloading…";
  const response = await fetch(link.getAttribute("href"), { cache: "no-store", headers: bearer() });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error(answer.error || response.statusText);
  }
  const blob = await response.blob();
  const named = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  const save = el("a");
  save.href = URL.createObjectURL(blob);
  save.download = named ? named[1] : "cascade-download";
  document.body.appendChild(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(save.href), 10000);
  const rows = Number(response.headers.get("cascade-rows") || 0);
  status.textContent = "saved " + save.download + ": " + count(rows) + (rows === 1 ? " row" : " rows") +
    (response.headers.get("cascade-more") === "true" ? "; more matched: narrow the filters for the rest" : "");
  window.cascadeDownloads = (window.cascadeDownloads || 0) + 1;
}

// A page of the recorded runs the filters pick, under the live ones in the runs' list: a run
// the live page lists is not listed twice. Never more rows than a page (ROWS).
let recordedAsked = 0;
async function loadRuns() {
  downloadLinks();
  const asked = ++recordedAsked;
  const page = recordedPage;
  const { runs } = await historyGet("/api/history/runs", filters());
  if (asked !== recordedAsked) return; // other filters, or another page, asked for meanwhile
  const shown = runs.slice(page * ROWS, (page + 1) * ROWS);
  const lines = new Set(); // a run and its reruns are one row, the newest's, beside their line of work
  const first = (run) => (Array.isArray(run.line) && run.line.length > 1 ? run.line[0].run_id : null);
  const rows = shown.filter((run) => {
    const root = first(run);
    if (root === null) return true;
    if (lines.has(root)) return false;
    lines.add(root);
    return true;
  });
  // a line of work the live page lists (as a row, or in a row's line) is not listed twice
  const listedLive = new Set();
  for (const run of live.runs.byId.values()) {
    listedLive.add(run.run_id);
    for (const link of run.line || []) listedLive.add(link.run_id);
  }
  const notLive = (run) => !listedLive.has(run.run_id) &&
    !(run.line || []).some((link) => listedLive.has(link.run_id));
  updateRows($("h-runs"), rows.filter(notLive).map((run) => {
    const open = runButton(run.run_id, "link", () => openRecorded(run.run_id));
    const missing = run.missing_events ? span(count(run.missing_events) + " events missing", "missing") : "";
    const done = el("span");
    done.append(stateCounts(run.tasks), missing);
    const said = statusWithLine(run, (runId) => runButton(runId, "link", () => openRecorded(runId)));
    const tr = runRow([open, run.name == null ? span("-", "note") : run.name, run.project_id,
      said, run.origin, span("recorded", "note"), "-", done, run.started_at,
      run.duration == null ? "running" : seconds(run.duration),
      run.source, run.error]);
    tr.setAttribute("data-run-id", run.run_id);
    tr.className = "recorded";
    return tr;
  }));
  const more = runs.length > (page + 1) * ROWS;
  $("h-no-runs").textContent = shown.length ? "" : page ? "no more recorded runs match" : "no recorded run matches";
  $("h-pager").hidden = !page && !more;
  $("h-runs-prev").disabled = page === 0;
  $("h-runs-next").disabled = !more || (page + 1) * ROWS + 1 > MOST_RECORDED;
  $("h-runs-count").textContent = shown.length
    ? "recorded runs " + count(page * ROWS + 1) + "\u2013" + count(page * ROWS + shown.length) +
      (more ? " of more" : " of " + count(page * ROWS + shown.length)) : "";
}

// The recorded runs again from their first page (the filters changed, or Runs was shown).
export function reloadRecorded() {
  if (!historyKnown) return;
  recordedPage = 0;
  loadRuns().then(() => problem(null), problem);
}

// A failed task's attempts: each one's end, duration and error, its traceback on demand, and
// the decision on its hold (who, why), as the history recorded them (the run page's too).
export function attemptsList(task) {
  const list = el("ol", null, "attempts");
  for (const a of task.attempt_list || []) {
    const item = el("li");
    const d = a.decided;
    // an attempt a person's skip, complete or fail ended was held, then decided: it did not
    // complete (nor fail) of itself, whatever state the decision gave it
    const decidedEnd = d && d.decision !== "retry" && a.state !== "HELD";
    item.appendChild(decidedEnd
      ? span("attempt " + a.number + ": held, " + (DONE[d.decision] || d.decision) + " by decision", "decided")
      : span("attempt " + a.number + ": " + String(a.state).toLowerCase(), "c-" + safeClass(a.state)));
    if (a.duration != null) item.appendChild(span(" after " + seconds(a.duration), "note"));
    if (a.error) item.appendChild(span(" " + a.error, "error"));
    if (d) {
      const who = d.deadline ? "at the hold's deadline" : "by " + (d.by || "someone unnamed");
      item.appendChild(span(" \u2192 " + d.decision + " " + who + (d.reason ? " " + quoted(d.reason) : ""), "decided"));
    }
    if (a.traceback) item.appendChild(traceback(a.traceback));
    list.appendChild(item);
  }
  return list;
}

async function loadTasks() {
  const { tasks } = await historyGet("/api/history/tasks", { since: "7d" });
  fillTable($("h-tasks"), tasks.map((t) => {
    const open = el("button", t.task_name, "link");
    open.addEventListener("click", () => goTo({ ...noPlace(), name: "tasks", historyTask: t.task_name }));
    const tr = row([open, t.runs, t.executions, t.failures, (100 * t.failure_rate).toFixed(1) + "%",
      took(t.p50_ms), took(t.p95_ms), took(t.max_ms)]);
    tr.setAttribute("data-task-name", t.task_name);
    return tr;
  }));
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Duration (y, from 0 to the longest) against the time each execution ended (x).
function drawChart(chart, executions) {
  const width = 640, height = 180, left = 52, right = 8, top = 10, bottom = 24;
  const parts = [svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis" }),
    svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" })];
  if (executions.length) {
    const t0 = executions[0].ts, t1 = executions[executions.length - 1].ts;
    const longest = Math.max(...executions.map((e) => e.duration_ms), 1);
    const x = (ts) => left + (t1 > t0 ? (ts - t0) / (t1 - t0) : 0.5) * (width - left - right);
    const y = (value) => height - bottom - (value / longest) * (height - top - bottom);
    const points = executions.map((e) => x(e.ts).toFixed(1) + "," + y(e.duration_ms).toFixed(1));
    parts.push(svg("polyline", { points: points.join(" "), class: "line" }));
    for (const e of executions) {
      const dot = svg("circle", { cx: x(e.ts).toFixed(1), cy: y(e.duration_ms).toFixed(1), r: 2.5,
        class: "pt-" + safeClass(e.state) });
      dot.appendChild(svg("title", {}, took(e.duration_ms) + " " + e.state + " " + at(e.ts) + " run " + e.run_id));
      parts.push(dot);
    }
    parts.push(svg("text", { x: 2, y: top + 10 }, took(longest)), svg("text", { x: 2, y: height - bottom }, "0"),
      svg("text", { x: left, y: height - 6 }, at(t0)),
      svg("text", { x: width - right, y: height - 6, "text-anchor": "end" }, at(t1)));
  } else {
    parts.push(svg("text", { x: left + 10, y: height / 2 }, "no finished execution in the last 7 days"));
  }
  chart.replaceChildren(...parts);
  chart.setAttribute("data-points", String(executions.length));
}

async function loadTask(name) {
  const { executions } = await historyGet("/api/history/task", { name, since: "7d", limit: 500 });
  $("h-task").hidden = false;
  $("h-task-name").textContent = name;
  drawChart($("h-chart"), executions);
}

// who set, cleared or cancelled it, or was refused it, with what vouched for the name
// ("alice@example.com (oidc)") or "(claimed)" where only its writer said it; on an expiry,
// who had set what expired
const VOUCHED = ["set", "cleared", "cancelled", "decided", "refused", "start"];
function by(e) {
  if (!e.issued_by) return "-";
  if (e.action === "expired") return "set by " + e.issued_by;
  return VOUCHED.includes(e.action) ? e.issued_by + " (" + (e.vouched || "claimed") + ")" : e.issued_by;
}

// what a cancel stopped, as the engine that ran the run answered
function stoppedText(e) {
  const s = e.stopped || {};
  const head = "on " + (e.source || "?") + ": ";
  if (s.outcome === "already_cancelled") return head + "already cancelled";
  const names = (tasks, count) => {
    const shown = (Array.isArray(tasks) ? tasks : []).slice(0, 5).map((t) => String(t.task_name));
    const more = count - shown.length;
    return " (" + shown.join(", ") + (more > 0 ? " and " + more + " more" : "") + ")";
  };
  const parts = ["cancelled " + (s.cancelled_count || 0) + (s.cancelled_count ? names(s.cancelled, s.cancelled_count) : "")];
  if (s.abandoned_count) parts.push("abandoned " + s.abandoned_count + names(s.abandoned, s.abandoned_count));
  parts.push("not started " + (s.not_started || 0));
  return head + parts.join(", ");
}

// what came of a decision on a held task, as the engine that ran the run answered
function decidedText(e) {
  const d = e.decided || {};
  const task = (d.task_name || d.task_id || "?") + (d.attempt != null ? " attempt " + d.attempt : "");
  if (d.outcome === "applied") return task + ": applied";
  const first = d.decided || null;
  const who = first ? ": " + first.decision + (first.deadline ? " at the hold's deadline"
    : " by " + (first.by || "someone unnamed")) + (first.reason ? " " + quoted(first.reason) : "") : "";
  return task + ": refused (" + String(d.outcome || "?") + ")" + who;
}

// what a start request started, as the run's engine said
function startedText(e) {
  const s = e.started || {};
  const params = Object.entries(e.params || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ");
  return (s.name || e.type || "?") + " on " + (e.source || "?") + (params ? ": " + params : "") +
    (s.rerun_of ? "; rerun of " + shortId(String(s.rerun_of)) : "");
}

async function loadAudit() {
  const { events } = await historyGet("/api/history/audit", { since: "7d" });
  fillTable($("h-audit"), events.map((e) => {
    const cancel = e.action === "cancelled";
    const start = e.action === "start";
    const params = cancel ? stoppedText(e) : e.action === "decided" ? decidedText(e)
      : e.action === "refused" ? "-"
      : start ? startedText(e)
      : paramsText(e.params);
    const scope = cancel || start || e.action === "decided" ? "run:" + shortId(String(e.run_id || ""))
      : e.scope || "-";
    // a row of refusals folded over a minute says how many it stands for
    const action = e.count > 1 ? e.action + " \u00d7" + e.count : e.action;
    const tr = row([at(e.at), action, scope, e.type || "-", params,
      e.ttl == null ? "-" : seconds(e.ttl), by(e), e.reason || "-", e.topic || "-"]);
    if (cancel || start || e.action === "decided") tr.title = "run " + e.run_id;
    if (e.action === "refused") tr.className = "refused";
    return tr;
  }));
}

// A recorded run a person opened: its page (/runs/ID).
export function openRecorded(runId) {
  goTo({ ...noPlace(), name: "run", run: runId });
}

export let historyKnown = null; // whether there is a History section (null: not known yet)

// The task's durations the place names (/history/tasks/NAME), shown; elsewhere hidden.
export function showHistoryPlace(place) {
  if (!historyKnown) return; // asked once the history is known to be there (startHistory)
  if (place.historyTask) {
    if ($("h-task").hidden || $("h-task-name").textContent !== place.historyTask) {
      loadTask(place.historyTask).then(() => problem(null), problem);
    }
  } else {
    $("h-task").hidden = true;
  }
}

let historyStarted = false;
export let historyAwaited = false; // none yet, but one is wanted: looked for again (lookAgain)
export const HISTORY_LOOK_AGAIN_MS = 5000;

// The History section, once the page may read (main.js calls it then; once is enough).
export async function startHistory() {
  if (historyStarted) return;
  historyStarted = true;
  for (const id of ["h-runs-csv", "h-runs-jsonl", "h-tasks-csv", "h-tasks-jsonl", "h-audit-csv",
    "h-audit-jsonl"]) {
    $(id).addEventListener("click", (event) => {
      event.preventDefault();
      download($(id)).catch((error) => { $("h-download").textContent = ""; problem(error); });
    });
  }
  const turn = (by) => () => { recordedPage = Math.max(0, recordedPage + by); loadRuns().then(() => problem(null), problem); };
  $("h-runs-next").addEventListener("click", turn(1));
  $("h-runs-prev").addEventListener("click", turn(-1));
  await lookForHistory();
}

// Ask whether there is a history; while there is none but one is wanted (a note says why:
// `cascade record` not started yet, or started in the same second as the dashboard and still
// making it), ask again every HISTORY_LOOK_AGAIN_MS, and once it is there fill the places it
// fills, saying it was found.
async function lookForHistory() {
  let history = false;
  try {
    const answer = await historyGet("/api/history");
    const { location: where, note } = answer;
    history = answer.history;
    const found = history && historyAwaited;
    historyKnown = history;
    historyAwaited = !history && note != null;
    // the places the history fills say why there is none and what to do (the note), or that
    // this dashboard was served with none
    for (const said of document.querySelectorAll(".history-note")) {
      said.textContent = history ? "" : note || NO_HISTORY;
      said.hidden = history;
    }
    $("h-note").hidden = history || !note; // on Runs, the live runs are there without one
    const foundAt = found ? "found at " + at(Date.now() / 1000) : "";
    $("h-where").textContent = !history ? ""
      : where ? "history: " + where + (found ? " (" + foundAt + ")" : "")
      : found ? "history " + foundAt : "";
    problem(null);
  } catch (error) {
    historyKnown = historyKnown === null ? false : historyKnown;
    if (error.status === 404) return; // a dashboard without the history's endpoints
    problem(error);
    historyAwaited = historyAwaited || historyKnown === false; // unreachable now: again later
  }
  schedule(); // the run's page says what it waits for, or reads what the history recorded
  if (!history) {
    if (historyAwaited) setTimeout(lookForHistory, HISTORY_LOOK_AGAIN_MS);
    return;
  }
  historyAwaited = false;
  $("h-downloads").hidden = false;
  showHistoryPlace(placeOf(new URL(location.href)));
  try {
    await loadRuns();
  } catch (error) {
    problem(error);
  }
  Promise.all([loadTasks(), loadAudit()]).catch(problem);
}

