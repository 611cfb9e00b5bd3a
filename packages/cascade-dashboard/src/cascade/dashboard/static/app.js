// The Cascade dashboard page: what its scripts share, the controls, and the start. Every string
// from the broker is attacker-controlled: it only ever reaches the page through textContent or
// setAttribute, never as HTML. render.js draws the live state, live.js keeps it (its stream of
// changes), timeline.js draws a run's timeline, logs.js its log lines, history.js the History
// section, decisions.js the "Needs a decision" list, workflows.js the start form.
"use strict";

const STATES = ["RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "BLOCKED", "HELD", "RETRYING"];
const NO_EXPIRY = 253402300799; // past year 9999: no expiry, as every reader treats it
const $ = (id) => document.getElementById(id);
const SHORT_ID = 12; // a run id's digits every view shows: cascade.control.SHORT_ID (a test keeps them equal)

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

function seconds(value) {  // as the CLI's duration(): 12.3s, 4m05s, 2h05m, 3d04h
  if (!(value >= 0)) return "-";
  if (value < 59.95) return value.toFixed(1) + "s";
  const whole = Math.round(value), pad = (n) => String(n).padStart(2, "0");
  const minutes = Math.floor(whole / 60), hours = Math.floor(minutes / 60);
  if (minutes < 60) return minutes + "m" + pad(whole % 60) + "s";
  if (hours < 24) return hours + "h" + pad(minutes % 60) + "m";
  return Math.floor(hours / 24) + "d" + pad(hours % 24) + "h";
}

function clock(epoch) { return new Date(epoch * 1000).toISOString().slice(11, 19) + " UTC"; }

function count(n) { return Number(n).toLocaleString("en"); }

function replace(tbody, rows) { tbody.replaceChildren(...rows); }

// A table's rows, or one saying "none" across its columns: an empty section says so.
function fillTable(table, rows) {
  if (!rows.length) {
    const none = el("td", "none", "note");
    none.colSpan = table.tHead.rows[0].cells.length;
    rows = [el("tr", null, "none")];
    rows[0].appendChild(none);
  }
  replace(table.tBodies[0], rows);
}

// A list's items, or one item saying "none" (or what empty says).
function fillList(list, items, empty = "none") {
  list.replaceChildren(...(items.length ? items : [el("li", empty, "none note")]));
}

// A header value is bytes: the token goes as its UTF-8 bytes, which the server compares.
function bearer() {
  const token = $("token").value;
  return token ? { "Authorization": "Bearer " + String.fromCharCode(...new TextEncoder().encode(token)) } : {};
}

// -- who signed in ----------------------------------------------------------------------

let signedIn = false; // by a session cookie: the controls need no token then (render.js)

// A team's dashboard: the name of whoever signed in and, for a session of the dashboard's own,
// a sign-out form; nobody yet, a link to the sign-in page that comes back here. Whether the
// page may read: a team's dashboard shows nothing to someone not signed in.
async function showWho() {
  let response, answer;
  try {
    response = await fetch("/api/me", { headers: bearer() });
    answer = await response.json();
  } catch (error) {
    return true; // an older dashboard, or none: nothing to show
  }
  $("who").hidden = $("sign-in").hidden = $("sign-out").hidden = true;
  if (response.ok) {
    signedIn = answer.via !== "token";
    $("who").textContent = answer.name + (answer.role ? " (" + answer.role + ")" : "");
    $("who").hidden = false;
    $("sign-out").hidden = !answer.sign_out;
  } else if (typeof answer.sign_in === "string" && answer.sign_in.startsWith("/")) {
    $("sign-in").setAttribute("href",
      answer.sign_in + "?next=" + encodeURIComponent(location.pathname + location.search));
    $("sign-in").hidden = false;
    const badge = $("connection");
    badge.textContent = "sign in to see this dashboard";
    badge.className = "badge bad";
    return false;
  }
  return true;
}

// The live stream and the history, once the page may read (see showWho): a page nobody signed
// in to asks for nothing it would be refused.
async function connectIfSignedIn() {
  if (!(await showWho())) return;
  connect();
  startHistory();
  startWorkflows();
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
    connectIfSignedIn(); // the stream of a token holder is never refused
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
  startPaging();
  $("logs-all").addEventListener("click", () => showLogsOf(null));
  $("timeline").addEventListener("click", (event) => {
    const name = event.target.closest && event.target.closest("[data-task-id]");
    if (name) showLogsOf(name.getAttribute("data-task-id"));
  });
  const place = placeOf(new URL(location.href));
  if (placeUrl(place) !== location.pathname + location.search) { // ?run=ID: now /runs/ID
    history.replaceState(null, "", placeUrl(place));
  }
  document.title = placeTitle(place);
  selected = place.run;
  logTask = place.task;
  showFirstState();
  connectIfSignedIn();
}

// The state the dashboard served the page with (its view as this address asks it, when the
// reader may see it): drawn at once, before any request, so that the page's first paint
// shows what the dashboard holds, not "connecting…". The stream then brings what changes.
function showFirstState() {
  let first = null;
  try {
    first = JSON.parse($("first-state").textContent);
  } catch (error) {
    first = null;
  }
  window.cascadeFirstState = Boolean(first);
  if (!first) return;
  applyChanges(first);
  paint();
}

document.addEventListener("DOMContentLoaded", start);
