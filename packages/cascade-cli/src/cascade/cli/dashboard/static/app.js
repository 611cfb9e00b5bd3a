// The Cascade dashboard page. Every string from the broker is attacker-controlled: it only
// ever reaches the page through textContent or setAttribute, never as HTML.
"use strict";

const STATES = ["RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "BLOCKED", "RETRYING"];
const NO_EXPIRY = 253402300799; // past year 9999: no expiry, as every reader treats it
const $ = (id) => document.getElementById(id);
const SHORT_ID = 12; // a run id's digits every view shows: cascade.cli._run_ids.SHORT_ID (a test keeps them equal)

let latest = null;       // the last state received
let selected = null;     // the opened run's id
let painting = false;
const progressSeen = new Map(); // run id -> highest progress shown: it never goes backwards
window.cascadeRepaints = 0;     // read by the tests and the benchmark

function shortId(runId) { return runId.slice(0, SHORT_ID); }

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell == null ? "" : String(cell);
    tr.appendChild(td);
  }
  return tr;
}

function span(text, className) { return el("span", text, className); }

function safeClass(value) { return /^[A-Za-z_]+$/.test(String(value)) ? String(value) : "unknown"; }

function seconds(value) {
  if (!(value >= 0)) return "-";
  return value < 60 ? value.toFixed(1) + "s" : Math.floor(value / 60) + "m" + String(Math.round(value % 60)).padStart(2, "0") + "s";
}

function clock(epoch) { return new Date(epoch * 1000).toISOString().slice(11, 19) + " UTC"; }

function replace(tbody, rows) { tbody.replaceChildren(...rows); }

// -- rendering -------------------------------------------------------------------------

function renderConnection(state) {
  const c = state.connection;
  const badge = $("connection");
  badge.textContent = c.connected ? "broker connected" : "broker disconnected";
  badge.className = "badge " + (c.connected ? "ok" : "bad");
  const ignored = [[state.rejected, "malformed"], [state.oversized, "oversized"]]
    .filter(([count]) => count).map(([count, what]) => count + " " + what);
  $("rejected").textContent = ignored.length ? ignored.join(", ") + " messages ignored" : "";
  $("missed").textContent = (state.missed || [])
    .map((m) => "missed " + m.events.toLocaleString("en") + " events from " + m.source +
      (m.since ? " since " + clock(m.since) : ""))
    .join(" · ");
  $("refused").textContent = (state.refused || [])
    .map((r) => "refused " + r.messages.toLocaleString("en") + " messages claiming " + r.source +
      ": " + Object.entries(r.reasons).map(([why, n]) => n.toLocaleString("en") + " " + why).join(", "))
    .join(" · ");
  $("mode").textContent = state.controls ? "controls enabled" : "read-only";
  for (const id of ["c-apply", "c-resume"]) $(id).disabled = !state.controls;
  $("token-label").hidden = !state.controls;
}

function renderRuns(state) {
  const rows = state.runs.map((run) => {
    const shown = Math.max(progressSeen.get(run.run_id) || 0, run.progress ?? 0); // null: total unknown
    progressSeen.set(run.run_id, shown);
    const open = el("button", shortId(run.run_id), "link");
    open.title = run.run_id;
    open.addEventListener("click", () => select(run.run_id));
    const bar = el("div", null, "progress");
    const fill = el("div");
    fill.style.width = (100 * shown).toFixed(1) + "%";
    bar.appendChild(fill);
    bar.setAttribute("data-progress", shown.toFixed(4));
    const counts = el("span");
    for (const s of STATES) if (run.counts[s]) counts.appendChild(span(s.toLowerCase() + " " + run.counts[s], "count c-" + s));
    // what this view lacks of the run until its engine answers ("joined late: 12 of 40 tasks known")
    if (run.partial) counts.appendChild(span(run.partial, "count partial"));
    const end = run.ended || state.now;
    const tr = row([open, run.project_id, span(run.status, safeClass(run.status)), bar,
      run.finished + "/" + (run.total ?? "?"), counts, run.started ? seconds(end - run.started) : "-"]);
    tr.setAttribute("data-run-id", run.run_id);
    if (run.run_id === selected) tr.className = "selected";
    return tr;
  });
  replace($("runs").tBodies[0], rows);
  $("no-runs").hidden = state.runs.length > 0;
  const hidden = state.runs_total - state.runs.length;
  $("more-runs").textContent = hidden > 0 ? hidden + " older finished runs not listed" : "";
}

// A run's timeline: per task, a bar per state it was in, from its segments ({state, start,
// end, outcome}), on one time axis from the first segment to ``until``. Also drawn by
// history.js for finished runs, from the history's segments.
function drawTimeline(container, runTasks, until, fallbackStart, now) {
  let t0 = Infinity;
  let t1 = until;
  for (const task of runTasks) for (const s of task.segments) {
    t0 = Math.min(t0, s.start);
    t1 = Math.max(t1, s.end || s.start);
  }
  if (!isFinite(t0)) t0 = fallbackStart;
  const span_ = Math.max(t1 - t0, 0.001);
  const cells = [];
  const first = (task) => (task.segments[0] || task).start || task.since || task.started_at || 0;
  const tasks = [...runTasks].sort((a, b) => first(a) - first(b));
  for (const task of tasks) {
    const name = el("div", task.name + (task.attempts > 1 ? " ×" + task.attempts : ""), "tl-name");
    const held = task.held_by ? heldText(task.held_by, now) : "";
    if (held) name.appendChild(el("div", held, "held"));
    name.title = task.task_id + " " + task.state + (task.error ? "\n" + task.error : "") +
      (held ? "\n" + held : "");
    name.setAttribute("data-task-id", task.task_id);
    name.setAttribute("data-state", safeClass(task.state));
    const track = el("div", null, "tl-track");
    for (const s of task.segments) {
      const end = s.end == null ? now : s.end;
      const cls = s.state === "RUNNING" && s.outcome ? "o-" + safeClass(s.outcome) : "s-" + safeClass(s.state);
      const bar = el("div", null, "bar " + cls);
      bar.style.left = (100 * (s.start - t0) / span_).toFixed(2) + "%";
      bar.style.width = (100 * Math.max(end - s.start, 0) / span_).toFixed(2) + "%";
      bar.title = s.state + (s.outcome ? " → " + s.outcome : "") + " " + seconds(end - s.start);
      track.appendChild(bar);
    }
    cells.push(name, track);
  }
  container.replaceChildren(...cells);
}

function renderRun(state) {
  const run = state.run;
  $("run").hidden = !run;
  if (!run) return;
  $("run-id").textContent = run.run_id;
  $("run-status").textContent = run.status;
  $("run-status").className = "badge " + safeClass(run.status);
  $("run-trace").textContent = run.trace_id ? "trace " + run.trace_id : "";
  $("run-cancel").disabled = !state.controls || run.status !== "Running";
  drawTimeline($("timeline"), run.tasks, run.ended || state.now, run.started || state.now, state.now);
  $("truncated").textContent = run.truncated ? run.truncated + " tasks not drawn (too many)" : "";
  const failures = run.failures.map((f) => {
    const li = el("li");
    li.appendChild(span(f.name + ": ", "c-FAILED"));
    li.appendChild(span(f.error, "error"));
    return li;
  });
  if (!failures.length && run.error) failures.push(el("li", run.error, "error"));
  $("failures").replaceChildren(...failures);
}

// What holds a blocked task back, in words (the CLI's `watch` and `why` say the same).
function holdText(h, now) {
  const scope = h.scope ? " on " + h.scope : "";
  const issued = (h.issued_by ? " by " + h.issued_by : "") +
    (h.reason ? " \u201c" + h.reason + "\u201d" : "");
  if (h.type === "sync") return "waiting for the broker's retained constraints";
  if (h.type === "concurrency" && h.limit != null) {
    const names = Object.entries(h.holders || {}).slice(0, 3).map(([n, c]) => c + " " + n).join(", ");
    return "concurrency " + (h.running ?? h.limit) + "/" + h.limit + scope +
      (names ? " (running: " + names + ")" : "") + issued;
  }
  if (h.type === "rate_limit") {
    const next = h.next_start != null ? ", next start " + clock(h.next_start) +
      " (in " + seconds(h.next_start - now) + ")" : "";
    return "rate_limit " + (h.rate || "") + scope + next + issued;
  }
  return h.type + scope + issued;
}

function heldText(holds, now) {
  return holds.length ? "held: " + holds.map((h) => holdText(h, now)).join("; ")
    : "held: nothing now (waits for a free slot)";
}

function renderEngines(state) {
  replace($("engines").tBodies[0], state.engines.map((e) => row([
    e.source,
    span(e.status + (e.reason ? " (" + e.reason + ")" : ""), safeClass(e.status)),
    e.session == null ? "-" : e.session,
    seconds(state.now - e.last_seen) + " ago",
  ])));
}

function renderConstraints(state) {
  // Ticks move the clock between states: a constraint may expire in between.
  const live = state.constraints.filter((c) => c.expires_at == null || c.expires_at > state.now);
  replace($("constraints").tBodies[0], live.map((c) => {
    const params = Object.entries(c.params).map(([k, v]) => k + "=" + v).join(", ") || "-";
    const expires = c.expires_at == null || c.expires_at > NO_EXPIRY ? "never"
      : clock(c.expires_at) + " (in " + seconds(c.expires_at - state.now) + ")";
    const issued = [c.issued_by ? "by " + c.issued_by : "", c.issued_at ? clock(c.issued_at) : "",
      c.reason ? "\u201c" + c.reason + "\u201d" : ""].filter(Boolean).join(" ") || "-";
    const clear = el("button", "clear");
    clear.disabled = !state.controls;
    clear.addEventListener("click", () => control("DELETE",
      "/api/constraints?scope=" + encodeURIComponent(c.scope) + "&type=" + encodeURIComponent(c.type)));
    const tr = row([c.scope, c.type, params, span(issued, "issued"), expires, clear]);
    tr.setAttribute("data-scope", c.scope);
    tr.setAttribute("data-type", c.type);
    return tr;
  }));
}

function paint() {
  painting = false;
  if (!latest) return;
  renderConnection(latest);
  renderRuns(latest);
  renderRun(latest);
  renderEngines(latest);
  renderConstraints(latest);
  window.cascadeRepaints += 1;
}

function schedule() {
  if (painting) return;
  painting = true;
  requestAnimationFrame(paint);
}

// -- live stream -----------------------------------------------------------------------
// Read with fetch(), not EventSource: it carries the token (so the server never counts this
// page among the anonymous streams it limits), and it retries after *any* failure, a 503
// included, where EventSource gives up for good.

const RETRY_FIRST = 500;   // ms, doubled after each failure up to RETRY_CAP, each jittered
const RETRY_CAP = 15000;
let stream = null;         // the AbortController of the stream being read
let failures = 0;          // since the last state received
let retryTimer = null;
window.cascadeReconnects = 0; // read by the tests

// A header value is bytes: the token goes as its UTF-8 bytes, which the server compares.
function bearer() {
  const token = $("token").value;
  return token ? { "Authorization": "Bearer " + String.fromCharCode(...new TextEncoder().encode(token)) } : {};
}

function onEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (kind === "state") {
    latest = JSON.parse(data.join("\n"));
    failures = 0;
    schedule();
  } else if (kind === "tick" && latest) {
    const tick = JSON.parse(data.join("\n"));
    latest.now = tick.now;
    latest.connection = tick.connection;
    schedule();
  }
}

async function read(url, controller) {
  const response = await fetch(url, { headers: bearer(), signal: controller.signal, cache: "no-store" });
  if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const from = Math.max(0, buffer.length - 1); // an event's end may straddle two chunks
    buffer += value;
    let end = buffer.indexOf("\n\n", from);
    while (end >= 0) {
      onEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
}

function connect() {
  if (stream) stream.abort();
  clearTimeout(retryTimer);
  const controller = new AbortController();
  stream = controller;
  const url = "/api/stream" + (selected ? "?run=" + encodeURIComponent(selected) : "");
  read(url, controller).catch(() => null).then(() => {
    if (stream !== controller) return; // replaced on purpose: a new run opened, a new token
    const delay = Math.min(RETRY_CAP, RETRY_FIRST * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    const badge = $("connection");
    badge.textContent = "dashboard unreachable, retrying in " + seconds(delay / 1000);
    badge.className = "badge bad";
    retryTimer = setTimeout(() => { window.cascadeReconnects += 1; connect(); }, delay);
  });
}

function select(runId) {
  selected = runId === selected ? null : runId;
  const url = new URL(location.href);
  if (selected) url.searchParams.set("run", selected); else url.searchParams.delete("run");
  history.replaceState(null, "", url);
  connect();
}

// -- controls --------------------------------------------------------------------------

async function control(method, url, body) {
  const status = $("control-status");
  status.textContent = "sending…";
  status.className = "note";
  const headers = bearer();
  if (body) headers["Content-Type"] = "application/json";
  try {
    const response = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    status.textContent = "done: " + (answer.said ? answer.said : answer.published
      ? answer.published.map((p) => p.type + " on " + p.topic).join(", ")
      : "cleared " + (answer.cleared.join(", ") || "nothing"));
    status.className = "note ok";
  } catch (error) {
    status.textContent = "refused: " + error.message;
    status.className = "error";
  }
}

function onApply(event) {
  event.preventDefault();
  const type = $("c-type").value;
  const value = $("c-value").value.trim();
  const ttl = $("c-ttl").value.trim();
  const params = type === "concurrency" ? { limit: value === "" ? null : Number(value) }
    : type === "rate_limit" ? { rate: value } : {};
  const reason = $("c-reason").value.trim();
  control("POST", "/api/constraints", { scope: $("c-scope").value.trim(), type, params,
    ttl: ttl ? Number(ttl) : null, reason: reason || null });
}

function start() {
  // `cascade dashboard --demo` prints a URL with #token=...: a fragment never reaches a server.
  if (location.hash.startsWith("#token=")) {
    sessionStorage.setItem("cascade-token", decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("token").value = sessionStorage.getItem("cascade-token") || "";
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("cascade-token", $("token").value);
    connect(); // the stream of a token holder is never refused
  });
  $("control").addEventListener("submit", onApply);
  $("run-cancel").addEventListener("click", () => {
    if (!selected) return;
    const reason = $("c-reason").value.trim();
    control("POST", "/api/runs/" + encodeURIComponent(selected) + "/cancel",
      reason ? { reason } : undefined);
  });
  $("c-resume").addEventListener("click", () =>
    control("DELETE", "/api/constraints?scope=" + encodeURIComponent($("c-scope").value.trim())));
  selected = new URL(location.href).searchParams.get("run");
  connect();
}

document.addEventListener("DOMContentLoaded", start);
