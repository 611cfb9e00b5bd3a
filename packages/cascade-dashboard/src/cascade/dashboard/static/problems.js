// The Problems place (/problems): the lists behind the header's notes, each as a table. What
// the page missed (by source) and refused (by the source claimed), the engines whose id two
// live engines share and those whose telemetry does not reach the dashboard (silent), a page
// at a time from /api/problems/{kind} (every source, by source; the header names a few only).
// Every string here came from the broker (a source's id is whatever a publisher claimed): it
// reaches the page through textContent only.
import { ask } from "./api.js";
import { $, fillTable, row } from "./dom.js";
import { clock, count } from "./format.js";

const PAGE_ROWS = 50; // sources per page of a list

// Each list the API pages through: its rows' cells, and what its count is of.
const LISTS = {
  missed: (item) => [item.source, count(item.events), item.since ? clock(item.since) : "-"],
  refused: (item) => [item.source, count(item.messages),
    Object.entries(item.reasons || {}).map(([why, n]) => count(n) + " " + why).join(", ")],
  conflicts: (item) => [item.source, item.session == null ? "-" : item.session,
    item.conflict_session == null ? "-" : item.conflict_session],
  silent: (item) => [item.source, item.line],
};
const before = {}; // each list's cursors of the pages before
const next = {}; // each list's cursor of the page after (null: none)
const asked = {}; // each list's pages asked for (a later answer wins)
for (const kind of Object.keys(LISTS)) {
  before[kind] = [];
  next[kind] = null;
  asked[kind] = 0;
}

async function loadList(kind) {
  const number = ++asked[kind];
  const params = new URLSearchParams({ limit: String(PAGE_ROWS) });
  const after = before[kind][before[kind].length - 1];
  if (after) params.set("after", after);
  try {
    const page = await ask("GET", "/api/problems/" + kind + "?" + params);
    if (number !== asked[kind]) return; // another page asked for meanwhile
    next[kind] = page.next_after || null;
    fillTable($("p-" + kind), page.items.map((item) => {
      const tr = row(LISTS[kind](item));
      tr.setAttribute("data-source", item.source);
      return tr;
    }));
    const first = before[kind].length * PAGE_ROWS + 1;
    $("p-" + kind + "-count").textContent = page.items.length
      ? "sources " + count(first) + "\u2013" + count(first + page.items.length - 1) + " of " + count(page.total)
      : "";
    $("p-" + kind + "-prev").disabled = !before[kind].length;
    $("p-" + kind + "-next").disabled = !next[kind];
    $("p-" + kind + "-said").textContent = "";
  } catch (error) {
    if (number === asked[kind]) $("p-" + kind + "-said").textContent = "could not read it: " + error.message;
  }
}

// Problems shown: each list read again from its first page (what went wrong changes).
export function showProblems() {
  for (const kind of Object.keys(LISTS)) {
    before[kind].length = 0;
    loadList(kind);
  }
}

export function startProblems() {
  for (const kind of Object.keys(LISTS)) {
    $("p-" + kind + "-next").addEventListener("click", () => {
      if (next[kind]) { before[kind].push(next[kind]); loadList(kind); }
    });
    $("p-" + kind + "-prev").addEventListener("click", () => { before[kind].pop(); loadList(kind); });
  }
  $("p-refresh").addEventListener("click", showProblems);
}
