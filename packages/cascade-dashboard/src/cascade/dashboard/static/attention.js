// What needs attention, in the header whatever the place: the tasks held for a decision ("2
// held", a link to Decisions) and the runs that failed in the last hour ("1 failed in the last
// hour", a link to Runs filtered so). The failures are counted by the history where there is one
// (every run, read every so often), else among the live runs the page holds. Each count says
// its state in words, not by colour alone.
import { $ } from "./dom.js";
import { count } from "./format.js";
import { historyGet, historyKnown } from "./history.js";
import { live } from "./live.js";

const HOUR = 3600;
const FAILED_EVERY = 30000; // ms between two counts of the recorded failures
const COUNTED = 100;        // counted up to this many ("100+")
let recordedFailed = null;  // the history's count (null: none read)
let timer = null;

function show(link, n, text) {
  link.hidden = !n;
  link.textContent = n ? text : "";
}

export function renderAttention() {
  const held = (live.held && live.held.total) || 0;
  show($("attention-held"), held, count(held) + " held");
  let failed = recordedFailed;
  if (failed === null) {
    failed = 0;
    for (const run of live.runs.byId.values()) {
      if (run.status === "Failed" && run.ended && live.now - run.ended < HOUR) failed += 1;
    }
  }
  show($("attention-failed"), failed, (failed >= COUNTED ? count(COUNTED) + "+" : count(failed)) +
    " failed in the last hour");
}

async function countRecorded() {
  if (!historyKnown) return;
  try {
    const { runs } = await historyGet("/api/history/runs", { status: "failed", since: "1h", limit: COUNTED });
    recordedFailed = runs.length;
  } catch (error) {
    recordedFailed = null; // the live runs' count stands in
  }
  renderAttention();
}

// The recorded failures counted now and every FAILED_EVERY ms (once the history is known).
export function startAttention() {
  clearInterval(timer);
  countRecorded();
  timer = setInterval(countRecorded, FAILED_EVERY);
}
