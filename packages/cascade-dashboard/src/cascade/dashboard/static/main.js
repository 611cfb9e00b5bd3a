// The Cascade dashboard page's entry module (index.html loads it; it imports the others): the
// token, the first state the page was served with, the stream and the history once the page
// may read, and the page's places (places.js: one per thing, each at its own address; back and
// forward). Every string from the broker is attacker-controlled: it only ever reaches the page
// through textContent or setAttribute, never as HTML (dom.js).
import { startAttention } from "./attention.js";
import { showBulkFilters, startBulkDecisions } from "./bulkdecide.js";
import { startControls } from "./constraints.js";
import { $ } from "./dom.js";
import { showHistoryPlace, startHistory } from "./history.js";
import { applyChanges, connect, filterRuns, openFirst, openLive, startPaging } from "./live.js";
import { onPlaceShown, placeOf, placeUrl, setRunPageOpener, showPlace, startNavigation } from "./places.js";
import { showProblems, startProblems } from "./problems.js";
import { paint } from "./render.js";
import { paintWith, schedule } from "./repaint.js";
import { openRunPage, startRunPage } from "./runpage.js";
import { showRunFilters, startRunFilters } from "./runs.js";
import { startSchedules } from "./schedules.js";
import { showSettings } from "./settings.js";
import { showWho } from "./who.js";
import { startWorkflows } from "./workflows.js";

// The live stream and the history, once the page may read (see showWho): a page nobody signed
// in to asks for nothing it would be refused.
async function connectIfSignedIn() {
  if (!(await showWho())) return;
  connect();
  startHistory().then(startAttention);
  startWorkflows();
  startSchedules();
}

// What each place asks for when shown: the run's page its run and task (places.js calls
// openRunPage, the opener runpage.js gives it), the live run closed elsewhere (its stream then
// carries no run's tasks); Tasks its task's durations; Runs its filters; Settings its webhooks;
// Problems its lists.
let firstShown = true; // the first place's run is opened by openFirst, its stream by connectIfSignedIn

function onShown(place) {
  if (firstShown) firstShown = false;
  else if (place.name !== "run") openLive(null, null);
  showHistoryPlace(place);
  if (place.name === "runs") showRunFilters(new URL(location.href));
  // the runs' filters are the Runs address's: elsewhere (Engines, which the engine filter
  // narrows too) none is in force, as the address says
  else if (place.name !== "run") filterRuns({ status: "", project: "", engine: "", name: "", trigger: "" });
  if (place.name === "decisions") showBulkFilters(new URL(location.href));
  if (place.name === "settings") showSettings();
  if (place.name === "problems") showProblems();
  schedule();
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
  startProblems();
  startRunPage();
  setRunPageOpener(openRunPage);
  startPaging();
  startRunFilters();
  startBulkDecisions();
  startNavigation();
  window.addEventListener("popstate", () => showPlace(placeOf(new URL(location.href))));
  const place = placeOf(new URL(location.href));
  if (new URL(location.href).searchParams.has("run")) { // ?run=ID: now /runs/ID
    history.replaceState(null, "", placeUrl(place));
  }
  openFirst(place.name === "run" ? place.run : null, place.task);
  showRunFilters(new URL(location.href), { first: true });
  showFirstState();
  onPlaceShown(onShown);
  showPlace(place);
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
