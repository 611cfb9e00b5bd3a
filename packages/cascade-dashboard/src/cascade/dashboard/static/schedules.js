// The Schedules section: each served schedule once (GET /api/schedules, live from its servers'
// announcements, as `cascade schedules` lists them): its workflow, when it fires, its next slot,
// its last slot and the run that slot started (a link to it), paused or not (by whom, until
// when, why), the slots its servers skipped, and for the schedules the reader may steer, Pause
// (with a reason) or Resume: a pause on the scope schedule:<name> through /api/constraints, as
// every pause goes (steerForm, steer and pauseText: the Workflows' triggers have them too). And
// how the run's page says a scheduled run's slot (scheduledText). Every string from the broker
// reaches the page through textContent or setAttribute only.
import { ask, control } from "./api.js";
import { $, el, fillTable, row, runButton, span } from "./dom.js";
import { at, dueAt, quoted, seconds } from "./format.js";
import { live, select, selected } from "./live.js";

const SCHEDULES_EVERY = 5000; // ms between two reads of the list while the page is open

// An ISO time (a slot) as the page says times: "2026-11-27 01:00:00 UTC" ("-": none).
function slot(iso) {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? (iso || "-") : at(ms / 1000);
}

// "scheduled: nightly, slot 2026-11-27 01:00:00 UTC": what started a run a schedule started
// ("": none did), from its origin.
export function scheduledText(origin) {
  if (!origin || !origin.schedule) return "";
  return "scheduled: " + origin.schedule + (origin.scheduled_for ? ", slot " + slot(origin.scheduled_for) : "");
}

function when(schedule) {
  if (schedule.cron) return schedule.cron + (schedule.tz ? " (" + schedule.tz + ")" : "");
  return schedule.every ? "every " + seconds(schedule.every) : "-";
}

// "no", or "paused by alice until ... “db migration”": a schedule's or a trigger's pause, as its
// servers announce it.
export function pauseText(paused) {
  if (!paused.paused) return "no";
  const until = paused.paused_until ? " until " + dueAt(paused.paused_until, live.now || Date.now() / 1000) : "";
  return "paused" + (paused.paused_by ? " by " + paused.paused_by : "") + until +
    (paused.paused_reason ? " " + quoted(paused.paused_reason) : "");
}

function lastCell(schedule) {
  if (!schedule.last_slot) return span(schedule.last ? slot(schedule.last) + " (claimed)" : "-");
  const cell = el("span", slot(schedule.last_slot) + " ");
  if (schedule.last_run) {
    const link = runButton(schedule.last_run, "link", () => { if (schedule.last_run !== selected) select(schedule.last_run); });
    link.setAttribute("data-run-id", schedule.last_run);
    cell.appendChild(link);
  }
  return cell;
}

// Pause `name` on `scope` with the form's reason, or resume it (`paused`): a pause through
// /api/constraints, as every pause goes, its progress and answer in `status`; `again` reads the
// list again once its servers may have announced the pause (or its end).
export function steer(status, name, scope, paused, form, again) {
  if (form.contains(document.activeElement)) document.activeElement.blur(); // sent: redraw it
  if (paused) {
    control(status, { sending: "resuming " + name + "…", method: "DELETE",
      url: "/api/constraints?scope=" + encodeURIComponent(scope) }, () => "resumed " + name);
  } else {
    const reason = form.querySelector("input[data-reason]").value.trim();
    control(status, { sending: "pausing " + name + "…", method: "POST",
      url: "/api/constraints", body: { scope, type: "pause", params: {}, ttl: null, reason: reason || null } },
      () => "paused " + name);
  }
  setTimeout(again, 500); // its servers announce the pause (or its end) in a moment
}

// A Pause (with a reason) or Resume (`paused`) form for `name`; `submitted(form)` on submit.
export function steerForm(name, paused, className, submitted) {
  const form = el("form", null, className);
  if (!paused) {
    const reason = el("input");
    reason.size = 16;
    reason.maxLength = 256;
    reason.placeholder = "reason";
    reason.setAttribute("data-reason", "");
    reason.setAttribute("aria-label", "reason of the pause of " + name);
    form.appendChild(reason);
  }
  const button = el("button", paused ? "Resume" : "Pause");
  button.type = "submit";
  form.appendChild(button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitted(form);
  });
  return form;
}

// the scope the asker may pause it on: every org's, or its org's or project's (/api/schedules)
function scheduleForm(schedule) {
  const scope = schedule.scope || "schedule:" + schedule.name;
  return steerForm(schedule.name, schedule.paused, "schedule-form",
    (form) => steer($("s-status"), schedule.name, scope, schedule.paused, form, loadSchedules));
}

let schedulesSeen = null; // the list drawn: the same list is not drawn again

async function loadSchedules() {
  let answer;
  try {
    answer = await ask("GET", "/api/schedules");
  } catch (error) {
    return; // an older dashboard, or one that may not read
  }
  const key = JSON.stringify(answer.schedules);
  if (key === schedulesSeen) return;
  // a reason being typed would lose its focus to the redraw: the next read draws it
  const typing = document.activeElement && document.activeElement.tagName === "INPUT";
  if (typing && $("s-table").contains(document.activeElement)) return;
  schedulesSeen = key;
  $("schedules").hidden = !answer.schedules.length;
  fillTable($("s-table"), answer.schedules.map((schedule) => {
    const skipped = schedule.skipped ? schedule.skipped + (schedule.last_skipped ? " (last " + schedule.last_skipped + ")" : "") : "0";
    const tr = row([schedule.name, schedule.workflow, when(schedule), slot(schedule.next),
      lastCell(schedule), span(pauseText(schedule), schedule.paused ? "paused" : ""), skipped,
      schedule.servers.join(", ") || "none online",
      schedule.steerable ? scheduleForm(schedule) : span("(not yours to pause)", "note")]);
    tr.setAttribute("data-schedule", schedule.name);
    return tr;
  }));
}

let schedulesTimer = null;

// Read the list now (again: a new token may steer other schedules), and every so often.
export function startSchedules() {
  loadSchedules();
  if (schedulesTimer === null) schedulesTimer = setInterval(loadSchedules, SCHEDULES_EVERY);
}
