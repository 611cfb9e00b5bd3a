// The page's places: one place per thing, each at its own address, so that what a person would
// share, bookmark or come back to is a link that a reload, another tab and the back and forward
// buttons restore:
//   /runs (and /)          Runs: live and recorded runs in one list (filters in the query)
//   /runs/ID               a run's own page (runpage.js fills it through setRunPageOpener)
//   /runs/ID/tasks/TASK    the same, showing the log lines of its task TASK
//   /workflows             Workflows: the served workflows, their start forms, the schedules
//   /decisions             Decisions: held tasks and gates awaiting approval (the bulk
//                          decision's filter in the query: run_id, task, project, error)
//   /engines               Engines
//   /constraints           Constraints: those in force and their controls
//   /audit                 Audit: the history's audit trail
//   /settings              Settings (admins): the webhooks a team's dashboard posts to
//   /tasks                 task durations; /history/tasks/NAME: one task's over time
//   /problems              Problems: the lists behind the header's notes (missed, refused, silent)
//   /history/runs/ID       the old address of a recorded run: the dashboard redirects it to /runs/ID
// Paths, not a #fragment: signing in sends a person back to the path and query they came from
// (a fragment never reaches the server), the dashboard answers a place with the page and its
// first state in one reply, and the fragment stays the demo's token's. ?run=ID still opens a run.
// Each place is an element with data-place="NAME" in index.html; showPlace shows that one only.
import { shortId } from "./format.js";

// The places in the navigation, in its order: [name, the path it is at, what the nav says].
export const NAVIGATION = [
  ["runs", "/runs", "Runs"],
  ["workflows", "/workflows", "Workflows"],
  ["decisions", "/decisions", "Decisions"],
  ["engines", "/engines", "Engines"],
  ["constraints", "/constraints", "Constraints"],
  ["audit", "/audit", "Audit"],
  ["settings", "/settings", "Settings"],
];
const AT = new Map(NAVIGATION.map(([name, at]) => [at.slice(1), name]));

// The filters of the runs' list an address's query may carry (a filtered list is a link).
export const RUN_FILTERS = ["status", "project", "engine", "name", "trigger", "since", "logging"];

// The bulk decision's filter an address's query may carry on Decisions (bulkdecide.js).
export const DECISION_FILTERS = ["run_id", "task", "project", "error"];

export function noPlace() {
  return { name: "runs", run: null, task: null, historyRun: null, historyTask: null };
}

export function placeOf(url) {
  const parts = url.pathname.split("/").slice(1).map((part) => {
    try { return decodeURIComponent(part); } catch (error) { return ""; }
  });
  const place = noPlace();
  if (parts[0] === "runs" && parts[1]) {
    place.name = "run";
    place.run = parts[1];
    if (parts[2] === "tasks" && parts.slice(3).join("/")) place.task = parts.slice(3).join("/");
  } else if (parts[0] === "history" && parts[1] === "runs" && parts[2]) {
    place.name = "run"; // the dashboard redirects it; a page that pushed it opens the run's page
    place.run = parts[2];
  } else if (parts[0] === "history" && parts[1] === "tasks" && parts.slice(2).join("/")) {
    place.name = "tasks";
    place.historyTask = parts.slice(2).join("/");
  } else if ((parts[0] === "tasks" || parts[0] === "problems") && !parts[1]) {
    place.name = parts[0];
  } else if (AT.has(parts[0]) && !parts[1]) {
    place.name = AT.get(parts[0]);
  } else if (url.searchParams.get("run")) {
    place.name = "run";
    place.run = url.searchParams.get("run");
  }
  return place;
}

export function placePath(place) {
  const part = encodeURIComponent;
  if (place.run) return "/runs/" + part(place.run) + (place.task ? "/tasks/" + part(place.task) : "");
  if (place.historyRun) return "/runs/" + part(place.historyRun);
  if (place.historyTask) return "/history/tasks/" + part(place.historyTask);
  if (place.name === "tasks" || place.name === "problems") return "/" + place.name;
  const listed = NAVIGATION.find(([name]) => name === place.name);
  return listed ? listed[1] : "/runs";
}

export function placeTitle(place) {
  const listed = NAVIGATION.find(([name]) => name === place.name);
  const what = place.run ? "run " + shortId(place.run) + (place.task ? " · " + place.task : "")
    : place.historyRun ? "run " + shortId(place.historyRun)
    : place.historyTask ? "task " + place.historyTask
    : place.name === "tasks" ? "Tasks"
    : place.name === "problems" ? "Problems"
    : listed ? listed[2] : null;
  return (what ? what + " · " : "") + "Cascade dashboard";
}

// Where the page is, as an address of its own (the old ?run= gone); the query is kept where it
// is the place's (the runs' filters on Runs) or the page's (?rows=N, everywhere).
export function placeUrl(place, query) {
  const url = new URL(location.href);
  url.searchParams.delete("run");
  if (place.name !== "decisions") for (const name of DECISION_FILTERS) url.searchParams.delete(name);
  if (place.name !== "runs" && place.name !== "decisions") {
    for (const name of RUN_FILTERS) url.searchParams.delete(name);
  }
  if (query) {
    for (const name of RUN_FILTERS) {
      if (query[name]) url.searchParams.set(name, query[name]); else url.searchParams.delete(name);
    }
  }
  return placePath(place) + url.search;
}

// -- the router ----------------------------------------------------------------------------

const shownListeners = [];
let runPageOpener = null;
export let current = noPlace(); // the place shown

// The run's own page: runpage.js gives its openRunPage here (it is called with the run's id, and
// the task, each time /runs/ID is shown).
export function setRunPageOpener(open) { runPageOpener = open; }

// `listener(place)` is called each time a place is shown (on load, a click, back and forward).
export function onPlaceShown(listener) { shownListeners.push(listener); }

// Show the place `place` names: its element, the others hidden; the nav's link to it marked.
export function showPlace(place) {
  current = place;
  const name = place.name;
  for (const element of document.querySelectorAll("[data-place]")) {
    element.hidden = !element.getAttribute("data-place").split(" ").includes(name);
  }
  // the run's own page (runpage.js's #run-page), wherever index.html holds it: shown at /runs/ID
  const runPage = document.getElementById("run-page");
  if (runPage) runPage.hidden = name !== "run";
  for (const link of document.querySelectorAll("#places a[data-nav]")) {
    const here = link.getAttribute("data-nav") === (name === "run" ? "runs" : name);
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  document.title = placeTitle(place);
  if (name === "run" && runPageOpener) runPageOpener(place.run, place.task);
  for (const listener of shownListeners) listener(place);
}

// A place the person went to: a new entry in the tab's history, unless it is where they are;
// then shown. `query`: the runs' filters, on Runs.
export function goTo(place, query) {
  const target = placeUrl(place, query);
  if (target !== location.pathname + location.search) history.pushState(null, "", target);
  showPlace(place);
}

// Links with data-nav (the nav's, the header's counts) go to their place without a reload.
export function startNavigation() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-go]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const url = new URL(link.getAttribute("href"), location.href);
    const place = placeOf(url);
    const query = {};
    for (const name of RUN_FILTERS) query[name] = url.searchParams.get(name) || "";
    goTo(place, place.name === "runs" ? query : null);
  });
}
