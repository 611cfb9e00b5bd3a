// The Runs place's filters: status, project, engine, name and the trigger that started a run (and
// how far back the recorded runs go, and the text their logs contain) live in the address's query (/runs?status=failed&...), so
// that a filtered list is a link someone can send, and back and forward restore it. The form
// says what the address asks; "show" puts the form's filters in the address. The live runs are
// filtered by the dashboard's stream (live.js), the recorded ones by the history (history.js),
// both into the one list.
import { $ } from "./dom.js";
import { reloadRecorded } from "./history.js";
import { filterRuns } from "./live.js";
import { goTo, noPlace, RUN_FILTERS } from "./places.js";

const FIELDS = { status: "r-status", project: "r-project", engine: "r-engine", name: "r-name",
  trigger: "r-trigger", since: "h-since", logging: "h-logging" };
const DEFAULT_SINCE = "24h";

// The filters an address asks for (those it does not give: empty; since: 24 h).
export function runFiltersOf(url) {
  const filters = {};
  for (const name of RUN_FILTERS) filters[name] = (url.searchParams.get(name) || "").trim();
  if (!filters.since) filters.since = DEFAULT_SINCE;
  return filters;
}

// The form as the address says, and the lists filtered so (`first`: the page's first state is
// of the unfiltered lists only when the address gives no filter; the stream is opened later).
export function showRunFilters(url, { first = false } = {}) {
  const filters = runFiltersOf(url);
  for (const [name, id] of Object.entries(FIELDS)) {
    const field = $(id);
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === filters[name])) {
      field.value = name === "since" ? DEFAULT_SINCE : "";
    } else {
      field.value = filters[name];
    }
  }
  filterRuns(filters, !first);
  if (!first) reloadRecorded();
}

export function startRunFilters() {
  $("r-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = {};
    for (const [name, id] of Object.entries(FIELDS)) query[name] = $(id).value.trim();
    if (query.since === DEFAULT_SINCE) query.since = "";
    goTo(noPlace(), query);
  });
}
