// The page's places in its address, so that what a person would share, bookmark or come back to
// is a link that a reload, another tab and the back and forward buttons restore:
//   /runs/ID               a live run, open
//   /runs/ID/tasks/TASK    the same, showing the log lines of its task TASK
//   /history/runs/ID       a recorded run, in the History
//   /history/tasks/NAME    a task's durations over time, in the History
// Paths, not a #fragment: signing in sends a person back to the path and query they came from
// (a fragment never reaches the server), the dashboard answers a place with the page and its
// first state in one reply, and the fragment stays the demo's token's. ?run=ID still opens a run.
import { shortId } from "./format.js";

export function noPlace() { return { run: null, task: null, historyRun: null, historyTask: null }; }

export function placeOf(url) {
  const parts = url.pathname.split("/").slice(1).map((part) => {
    try { return decodeURIComponent(part); } catch (error) { return ""; }
  });
  const place = noPlace();
  if (parts[0] === "runs" && parts[1]) {
    place.run = parts[1];
    if (parts[2] === "tasks" && parts.slice(3).join("/")) place.task = parts.slice(3).join("/");
  } else if (parts[0] === "history" && parts[1] === "runs" && parts[2]) {
    place.historyRun = parts[2];
  } else if (parts[0] === "history" && parts[1] === "tasks" && parts.slice(2).join("/")) {
    place.historyTask = parts.slice(2).join("/");
  } else if (url.searchParams.get("run")) {
    place.run = url.searchParams.get("run");
  }
  return place;
}

export function placePath(place) {
  const part = encodeURIComponent;
  if (place.run) return "/runs/" + part(place.run) + (place.task ? "/tasks/" + part(place.task) : "");
  if (place.historyRun) return "/history/runs/" + part(place.historyRun);
  if (place.historyTask) return "/history/tasks/" + part(place.historyTask);
  return "/";
}

export function placeTitle(place) {
  const what = place.run ? "run " + shortId(place.run) + (place.task ? " · " + place.task : "")
    : place.historyRun ? "recorded run " + shortId(place.historyRun)
    : place.historyTask ? "task " + place.historyTask : null;
  return (what ? what + " · " : "") + "Cascade dashboard";
}

// Where the page is, as an address of its own (the old ?run= gone); the rest of the query
// (?rows=N) is kept.
export function placeUrl(place) {
  const url = new URL(location.href);
  url.searchParams.delete("run");
  return placePath(place) + url.search;
}

// A place the person went to: a new entry in the tab's history, unless it is where they are.
export function goTo(place) {
  const target = placeUrl(place);
  if (target !== location.pathname + location.search) history.pushState(null, "", target);
  document.title = placeTitle(place);
}
