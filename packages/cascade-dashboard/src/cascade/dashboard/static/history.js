// The History section (`--db URL`, else the file `cascade record` writes by default): past
// runs with the filters of `cascade runs`, a finished run's timeline (timeline.js's
// drawTimeline), a task's duration over time as an SVG chart, and the audit trail (constraints
// and cancels); where the history is, or why there is none and how to start one. Everything the
// history holds came from the broker, so every string reaches the page through textContent or
// setAttribute only, never as HTML. A run's recorded log lines are shown beside its timeline,
// a page at a time; "runs whose logs contain" lists the runs by their text instead of the
// filters.
import { ask, bearer } from "./api.js";
import { $, el, fillList, fillTable, replace, row, runButton, safeClass, span, traceback } from "./dom.js";
import { at, count, paramsText, quoted, seconds, shortId, took } from "./format.js";
import { live, ROWS } from "./live.js";
import { drawLogLines } from "./logs.js";
import { goTo, noPlace, placeOf } from "./places.js";
import { schedule } from "./repaint.js";
import { scheduledText } from "./schedules.js";
import { DONE, decisionsText, stateCounts, statusCell } from "./states.js";
import { drawTimeline } from "./timeline.js";

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
  replace($("h-runs"), shown.filter((run) => !live.runs.byId.has(run.run_id)).map((run) => {
    const open = runButton(run.run_id, "link", () => openRecorded(run.run_id));
    const missing = run.missing_events ? span(count(run.missing_events) + " events missing", "missing") : "";
    const done = el("span");
    done.append(stateCounts(run.tasks), missing);
    const tr = row([open, run.name == null ? span("-", "note") : run.name, run.project_id,
      statusCell(run), span("recorded", "note"), "-", done, at(run.started_at),
      run.duration == null ? "running" : seconds(run.duration),
      run.source, span(run.error || "", "error")]);
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

// The run shown: its tasks so far (the reply is a page of them) and the next page's cursor.
let shownRun = null;

async function loadRun(runId) {
  const { run, next_after, maps } = await historyGet("/api/history/run", { id: runId });
  // a map's row stands for its items (maps counts them); those loaded, per map, as its row opens
  shownRun = { run, tasks: run.tasks, failures: run.failures, next: next_after, maps: maps || [],
    items: new Map() };
  $("h-run").hidden = false;
  $("h-run-id").textContent = run.run_id;
  $("h-run-status").textContent = run.status;
  $("h-run-status").className = "badge " + safeClass(run.status);
  $("h-run-decided").textContent = decisionsText(run);
  $("h-run-trace").textContent = run.trace_id ? "trace " + run.trace_id : "";
  $("h-run-name").textContent = run.name == null ? "" : run.name;
  $("h-run-origin").textContent = originText(run.origin);
  $("h-run-lineage").replaceChildren(...lineageParts(run));
  $("h-run-missing").textContent = run.missing_events
    ? count(run.missing_events) + " events never reached the history" : "";
  drawRun();
  await loadLogs(true);
}

// The shown run's log lines: the first page (again, `fresh`), or the next one after them.
let shownLogs = null;

async function loadLogs(fresh) {
  if (!shownRun) return;
  const runId = shownRun.run.run_id;
  if (fresh) shownLogs = { runId, task: $("h-log-task").value.trim(), next: 0 };
  const shown = shownLogs;
  if (shown.next == null) return;
  const { lines, next_after, batches } = await historyGet(
    "/api/history/runs/" + encodeURIComponent(runId) + "/logs", { task: shown.task, after: shown.next });
  if (shownLogs !== shown) return; // another run or task was asked for meanwhile
  drawLogLines($("h-logs"), lines, { clear: fresh });
  shown.next = next_after;
  $("h-logs-none").textContent = fresh && !lines.length ? "no log lines recorded" : "";
  // batches its engine numbered that never reached the history: their lines, of any task
  // (one that lost every line among them), are known neither in number nor by task
  if (fresh) $("h-logs-missing").textContent = batches && batches.missing
    ? count(batches.missing) + (batches.missing === 1 ? " batch" : " batches") +
      " of log lines missing, of any task (lost on the way or before a recorder listened)"
    : "";
  $("h-logs-more").hidden = next_after == null;
}

// The next page of the run's tasks (keyset: the cursor the last page gave), added to those shown.
async function loadMoreTasks() {
  const shown = shownRun;
  if (!shown || shown.next == null) return;
  const { run, next_after } = await historyGet("/api/history/run", { id: shown.run.run_id, after: shown.next });
  if (shownRun !== shown) return; // another run was opened meanwhile
  shown.tasks = shown.tasks.concat(run.tasks);
  shown.failures = shown.failures.concat(run.failures);
  shown.next = next_after;
  drawRun();
}

// The next page of a map's items (its row opened), added to those shown under its row.
async function loadMapItems(mapId) {
  const shown = shownRun;
  if (!shown) return;
  const loaded = shown.items.get(mapId) || { tasks: [], next: undefined, loading: false };
  if (loaded.loading || loaded.next === null) return;
  loaded.loading = true;
  shown.items.set(mapId, loaded);
  try {
    const params = { id: shown.run.run_id, map: mapId };
    if (loaded.next !== undefined) params.after = loaded.next;
    const { run, next_after } = await historyGet("/api/history/run", params);
    loaded.tasks = loaded.tasks.concat(run.tasks);
    loaded.next = next_after;
  } finally {
    loaded.loading = false;
  }
  if (shownRun === shown) drawRun();
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

// A run's served workflow, params and who started it and why, as its start said.
function originText(origin) {
  if (!origin) return "";
  const parts = [];
  if (origin.workflow) parts.push("workflow " + origin.workflow);
  if (origin.params) parts.push("params " + JSON.stringify(origin.params));
  if (origin.schedule) parts.push(scheduledText(origin));
  if (origin.request_id) {
    parts.push("started by " + (origin.issued_by || "someone unnamed") +
      (origin.reason ? " " + quoted(origin.reason) : ""));
  }
  return parts.join(" \u00b7 ");
}

// A link to another run of the line (its recorded page) and how it stands.
function runLink(link) {
  const item = el("span", null, "run-link");
  const open = runButton(link.run_id, "link lineage", () => openRecorded(link.run_id));
  open.setAttribute("data-run-id", link.run_id);
  item.appendChild(open);
  item.appendChild(span(" (" + (link.status || "not recorded") + ")",
    link.status ? safeClass(link.status) : "note"));
  return item;
}

// "rerun of X (Failed)" and "replaced by Y (Succeeded), Z (Running)": the run's line.
function lineageParts(run) {
  const parts = [];
  if (run.rerun_of) {
    const of = el("span", "rerun of ", "rerun-of");
    of.appendChild(runLink(run.rerun_of));
    parts.push(of);
  }
  if (run.replaced_by && run.replaced_by.length) {
    const by = el("span", (parts.length ? " \u00b7 " : "") + "replaced by ", "replaced-by");
    run.replaced_by.forEach((link, i) => {
      if (i) by.appendChild(span(", "));
      by.appendChild(runLink(link));
    });
    parts.push(by);
  }
  return parts;
}

function drawRun() {
  const { run, tasks, failures, next } = shownRun;
  const end = run.ended_at == null ? Date.now() / 1000 : run.ended_at;
  const items = [...shownRun.items.values()].flatMap((loaded) => loaded.tasks);
  drawTimeline($("h-timeline"), items.length ? tasks.concat(items) : tasks, { until: end,
    start: run.started_at, now: end, run: run.run_id, redraw: drawRun, maps: shownRun.maps,
    more: loadMapItems });
  // with pages still to load, "none" would speak of tasks not read yet
  fillList($("h-failures"), failures.map((f) => {
    const li = el("li");
    li.appendChild(span(f.name + ": ", "c-" + safeClass(f.state || "FAILED")));
    li.appendChild(span(f.error, "error"));
    li.appendChild(attemptsList(f));
    return li;
  }), next == null ? "none" : "none among the " + count(tasks.length) + " tasks shown");
  $("h-run-shown").textContent = next == null ? "" : count(tasks.length) + " tasks shown";
  $("h-run-more").hidden = next == null;
  const reused = tasks.filter((t) => t.reused_from || t.cached);
  $("h-run-reused").hidden = !reused.length;
  $("h-reused").replaceChildren(...reused.map((t) => {
    const li = el("li", null, "reused");
    li.appendChild(span(t.task_name + " ", "c-COMPLETED"));
    if (!t.reused_from) {  // a cache policy's: no run kept it
      li.appendChild(span("cached by its cache policy"));
      return li;
    }
    li.appendChild(span(t.cached ? "cached from run " : "from run "));
    li.appendChild(runLink({ run_id: t.reused_from, status: null }));
    return li;
  }));
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

// The recorded run and the task's durations the place names, shown (the others hidden): the
// recorded run of a run's page (/runs/ID), which the live view's stands beside until runpage.js
// gives the run's own page; a run the history does not hold is the live view's only.
export function showHistoryPlace(place) {
  if (!historyKnown) return; // asked once the history is known to be there (startHistory)
  const runId = place.name === "run" ? place.run : null;
  if (runId) {
    if (!shownRun || !shownRun.run.run_id.startsWith(runId)) {
      loadRun(runId).then(() => problem(null), (error) => {
        if (error.status === 404) $("h-run").hidden = true; else problem(error);
      });
    }
  } else {
    shownRun = null;
    shownLogs = null;
    $("h-run").hidden = true;
  }
  if (place.historyTask) {
    if ($("h-task").hidden || $("h-task-name").textContent !== place.historyTask) {
      loadTask(place.historyTask).then(() => problem(null), problem);
    }
  } else {
    $("h-task").hidden = true;
  }
}

let historyStarted = false;

// The History section, once the page may read (main.js calls it then; once is enough).
export async function startHistory() {
  if (historyStarted) return;
  historyStarted = true;
  try {
    const { history, location: where, note } = await historyGet("/api/history");
    historyKnown = history;
    // the places the history fills say why there is none and what to do (the note), or that
    // this dashboard was served with none
    for (const said of document.querySelectorAll(".history-note")) {
      said.textContent = history ? "" : note || NO_HISTORY;
      said.hidden = history;
    }
    $("h-note").hidden = history || !note; // on Runs, the live runs are there without one
    $("h-where").textContent = history && where ? "history: " + where : "";
    if (!history) return; // none yet, or unreadable: the note says why and what to do
    $("h-downloads").hidden = false;
    showHistoryPlace(placeOf(new URL(location.href)));
    schedule(); // a run this dashboard does not hold may be in the history (renderRun)
    await loadRuns();
  } catch (error) {
    historyKnown = historyKnown === null ? false : historyKnown;
    if (error.status === 404) return; // a dashboard without the history's endpoints
    problem(error);
  }
  $("h-run-more").addEventListener("click", () => loadMoreTasks().then(() => problem(null), problem));
  $("h-logs-more").addEventListener("click", () => loadLogs(false).then(() => problem(null), problem));
  $("h-log-task").addEventListener("change", () => loadLogs(true).then(() => problem(null), problem));
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
  Promise.all([loadTasks(), loadAudit()]).catch(problem);
}

