// The Cascade dashboard page's entry module (index.html loads it; it imports the others): the
// token, the first state the page was served with, the stream and the history once the page
// may read, and the page's places in its address (back and forward). Every string from the
// broker is attacker-controlled: it only ever reaches the page through textContent or
// setAttribute, never as HTML (dom.js).
import { startControls } from "./constraints.js";
import { $ } from "./dom.js";
import { showHistoryPlace, startHistory } from "./history.js";
import { applyChanges, connect, openFirst, openLive, showLogsOf, startPaging } from "./live.js";
import { placeOf, placeTitle, placeUrl } from "./places.js";
import { paint } from "./render.js";
import { paintWith } from "./repaint.js";
import { startSchedules } from "./schedules.js";
import { showWho } from "./who.js";
import { startWorkflows } from "./workflows.js";

// The live stream and the history, once the page may read (see showWho): a page nobody signed
// in to asks for nothing it would be refused.
async function connectIfSignedIn() {
  if (!(await showWho())) return;
  connect();
  startHistory();
  startWorkflows();
  startSchedules();
}

// The place the address names (on load, back and forward): the live run (and task) and the
// recorded run or task it names open, the others closed.
function applyPlace(place) {
  document.title = placeTitle(place);
  openLive(place.run, place.task);
  showHistoryPlace(place);
}

function start() {
  paintWith(paint);
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
  startControls();
  startPaging();
  $("logs-all").addEventListener("click", () => showLogsOf(null));
  // a task's box in the run's graph: its logs, as its name in the timeline; a map's open button:
  // its row in the timeline, opened to its items
  $("run-graph").addEventListener("graph-select", (event) => showLogsOf(event.detail.taskId));
  $("run-graph").addEventListener("graph-open", (event) => {
    const row = [...$("timeline").querySelectorAll("[data-map]")]
      .find((found) => found.getAttribute("data-map") === event.detail.taskId);
    const button = row && row.querySelector("button");
    if (!button) return;
    if (button.getAttribute("aria-expanded") !== "true") button.click();
    row.scrollIntoView({ block: "nearest" });
  });
  $("timeline").addEventListener("click", (event) => {
    const name = event.target.closest && event.target.closest("[data-task-id]");
    if (name) showLogsOf(name.getAttribute("data-task-id"));
  });
  window.addEventListener("popstate", () => applyPlace(placeOf(new URL(location.href))));
  const place = placeOf(new URL(location.href));
  if (placeUrl(place) !== location.pathname + location.search) { // ?run=ID: now /runs/ID
    history.replaceState(null, "", placeUrl(place));
  }
  document.title = placeTitle(place);
  openFirst(place.run, place.task);
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
  window.cascadeFirstState = Boolean(first); // read by the tests
  if (!first) return;
  applyChanges(first);
  paint();
}

start(); // a module runs once the page is parsed, as a deferred script does
