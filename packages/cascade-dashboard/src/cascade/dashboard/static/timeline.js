// A run's timeline, live and recorded (runpage.js draws both): per task, a bar per state it was
// in, from its segments ({state, start, end, outcome}), under a time axis (+0s at the first
// segment). Tasks sharing a name (a fan-out's seven downloads) are one row, "download ×7", their
// bars merged, that opens to a row each, "download #1"…: as Airflow's grid shows a mapped task
// (one row, its instances on demand), so a run of 500 downloads is one row until asked. A map
// (task.map) is one row of its own, "transform-7 ×10,000", its items counted by state (the
// history's counts where the page has them: view.maps), that opens to its items, loading more
// on demand (view.more) where the page has not got them all.
// Every string from the broker reaches the page through textContent or setAttribute only.
import { el, safeClass, span } from "./dom.js";
import { count, dueAt, quoted, seconds } from "./format.js";
import { STATES, stateCounts } from "./states.js";

const TICK_STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
  7200, 10800, 21600, 43200, 86400];
const MAX_TICKS = 6;     // intervals on the axis at most: its labels fit a narrow window
// Merged bars of a group, drawn in this order: a failure is never hidden under a success.
const LAYERS = ["s-QUEUED", "s-BLOCKED", "s-SKIPPED", "s-RETRYING", "s-RUNNING", "o-COMPLETED", "o-SKIPPED",
  "o-RETRYING", "o-CANCELLED", "s-HELD", "o-HELD", "o-FAILED"];
const openGroups = new Map(); // timeline element id -> {run, names}: the groups opened there

function tickStep(span) {
  for (const step of TICK_STEPS) if (span / step <= MAX_TICKS) return step;
  return 86400 * Math.ceil(span / 86400 / MAX_TICKS);
}

function offset(value) {  // an axis label: +0s, +0.5s, +5s, +1m, +1m30s, +2h, +1d6h
  if (value < 60) return "+" + Number(value.toFixed(1)) + "s";
  let rest = Math.round(value), text = "+";
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]]) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count) text += count + unit;
  }
  return text;
}

function segmentClass(s) {
  return s.state === "RUNNING" && s.outcome ? "o-" + safeClass(s.outcome) : "s-" + safeClass(s.state);
}

// A map's item's task id ends in [<digits>]: the part before it is its map's (docs/protocol.md).
const ITEM = /^([\s\S]*)\[[0-9]+\]$/;
export function mapOf(taskId) {
  const found = ITEM.exec(taskId);
  return found ? found[1] : null;
}

// A loop's iteration's task id is <loop>@<digits> where <loop> is a task of the same run (its
// own task's id, in runTaskIds: a Set); an '@' a task's name put in its id makes no iteration.
const ITERATION = /^([\s\S]*)@([0-9]+)$/;
export function loopOf(taskId, runTaskIds) {
  const found = ITERATION.exec(taskId);
  return found && runTaskIds.has(found[1]) ? found[1] : null;
}

// An iteration's number (7 for counter-4@7; 1: the loop's own call).
export function iterationOf(taskId) {
  const found = ITERATION.exec(taskId);
  return found ? Number(found[2]) : 1;
}

// The run's maps and loops as the history counts them, by their task's id, a loop's as a map's
// ({task_id, task_name, items, counts}, and a loop's {loop: true, latest, latest_state}).
export function foldedCounts(maps, loops) {
  const counted = new Map((maps || []).map((entry) => [entry.task_id, entry]));
  for (const entry of loops || []) counted.set(entry.task_id, { ...entry, items: entry.iterations, loop: true });
  return counted;
}

export function drawTimeline(container, runTasks, view) {
  // view: {until, start (when no segment has begun), now, run (its id), redraw(); maps: the
  // run's maps as the history counts them [{task_id, task_name, items, counts}]; loops: its
  // loops so [{task_id, task_name, iterations, counts, latest, latest_state}]; more(mapId):
  // load more of a map's items (a loop's iterations), where the page has not got them all}
  let t0 = Infinity;
  let t1 = view.until;
  for (const task of runTasks) for (const s of task.segments) {
    t0 = Math.min(t0, s.start);
    t1 = Math.max(t1, s.end || s.start);
  }
  if (!isFinite(t0)) t0 = view.start;
  const scale = { t0, span: Math.max(t1 - t0, 0.001), now: view.now };
  const step = tickStep(scale.span);
  container.style.setProperty("--tick", (100 * step / scale.span).toFixed(3) + "%");
  const cells = [el("div", null, "tl-corner"), axis(scale, step)];

  let open = openGroups.get(container.id);
  if (!open || open.run !== view.run) openGroups.set(container.id, open = { run: view.run, names: new Set() });
  const first = (task) => (task.segments[0] || task).start || task.since || task.started_at || 0;
  const counted = foldedCounts(view.maps, view.loops);
  const ids = new Set(runTasks.map((task) => task.task_id));
  for (const id of counted.keys()) ids.add(id);
  // a map's item or a loop's iteration: its map's, its loop's task id
  const parentOf = (taskId) => mapOf(taskId) ?? loopOf(taskId, ids);
  const maps = new Map(); // a map's (a loop's) id -> {head: its own task, items: those shown}
  const mapEntry = (id) => maps.get(id) || maps.set(id, { head: null, items: [], loop: false }).get(id);
  for (const [id, entry] of counted) mapEntry(id).loop = Boolean(entry.loop);
  for (const task of runTasks) {
    const parent = parentOf(task.task_id);
    if (parent == null) continue;
    const entry = mapEntry(parent);
    entry.items.push(task);
    if (mapOf(task.task_id) == null) entry.loop = true;
  }
  for (const entry of maps.values()) {
    if (entry.loop) entry.items.sort((a, b) => iterationOf(a.task_id) - iterationOf(b.task_id));
  }
  const groups = new Map(); // name -> its tasks, by when each began; in the order the first began
  for (const task of [...runTasks].sort((a, b) => first(a) - first(b))) {
    const parent = parentOf(task.task_id);
    const key = parent != null ? parent : maps.has(task.task_id) ? task.task_id : null;
    if (key != null) {  // a map's row, where its own task or its first item began
      if (parent == null) mapEntry(key).head = task;
      if (!groups.has("\u0000" + key)) groups.set("\u0000" + key, null);
      continue;
    }
    const members = groups.get(task.name);
    if (members) members.push(task); else groups.set(task.name, [task]);
  }
  for (const [name, members] of groups) {
    if (members === null) {
      const id = name.slice(1);
      cells.push(...mapRows(id, maps.get(id), counted.get(id), open, view, scale));
      continue;
    }
    if (members.length === 1) {
      cells.push(...taskRow(members[0], name, scale));
      continue;
    }
    const opened = open.names.has(name);
    const toggle = () => {
      if (open.names.has(name)) open.names.delete(name); else open.names.add(name);
      view.redraw();
    };
    cells.push(...groupRow(name, members, opened, toggle, scale));
    if (opened) members.forEach((task, index) => {
      const [label, track] = taskRow(task, name + " #" + (index + 1), scale);
      label.classList.add("tl-member");
      cells.push(label, track);
    });
  }
  const focused = focusedRow(container);
  container.replaceChildren(...cells);
  if (focused) refocus(container, focused);
}

// The row whose button has the keyboard's focus: a live run's timeline is drawn anew as it
// changes, and its focus goes with it (a person tabbing through the names would lose it).
const ROW_KEYS = ["data-task-id", "data-group", "data-map"];
function focusedRow(container) {
  const active = document.activeElement;
  if (!active || active.tagName !== "BUTTON" || !container.contains(active)) return null;
  const name = active.closest(".tl-name");
  const key = name && ROW_KEYS.find((attribute) => name.hasAttribute(attribute));
  return key ? [key, name.getAttribute(key)] : null;
}

function refocus(container, [key, value]) {
  for (const name of container.querySelectorAll(".tl-name[" + key + "]")) {
    if (name.getAttribute(key) !== value) continue;
    const button = name.querySelector("button");
    if (button) button.focus({ preventScroll: true });
    return;
  }
}

// A map's row: "▸ transform-7 ×10,000" with its items by state (the history's counts, else
// those of the items shown), its items' bars merged (its own task's where none is shown);
// opened, a row per item shown and, where the page has not got them all, a button for more.
// A loop's row alike: "▸ counter-4 ×1,000 iterations", its latest in its title.
function mapRows(id, found, entry, open, view, scale) {
  const key = "\u0000" + id;
  const opened = open.names.has(key);
  const { head, items } = found;
  let counts = entry ? entry.counts : {};
  if (!entry) for (const task of items) counts[task.state] = (counts[task.state] || 0) + 1;
  const total = entry ? entry.items : items.length;
  const loop = found.loop;
  const members = loop ? "iterations" : "items";
  const name = el("div", null, "tl-name tl-group tl-map");
  const button = el("button", (opened ? "▾ " : "▸ ") + id + " ×" + count(total) + (loop ? " iterations" : ""), "link");
  button.setAttribute("aria-expanded", String(opened));
  button.addEventListener("click", () => {
    if (open.names.has(key)) open.names.delete(key); else open.names.add(key);
    view.redraw();
    // opened with none of its items on the page: the first of them, redrawn when they are in
    if (open.names.has(key) && view.more && entry && !items.length) view.more(id);
  });
  name.appendChild(button);
  const said = STATES.filter((s) => counts[s]);
  name.appendChild(span(" "));
  name.appendChild(stateCounts(counts));
  const latest = loop ? (entry ? [entry.latest, entry.latest_state] : items.length
    ? [items[items.length - 1].task_id, items[items.length - 1].state] : null) : null;
  name.title = count(total) + " " + members + " of the " + (loop ? "loop " : "map ") + id +
    (head ? " (" + head.state + ")" : "") + ": " +
    said.map((s) => count(counts[s]) + " " + s.toLowerCase()).join(", ") +
    (latest ? "; latest " + latest[0] + " " + String(latest[1]).toLowerCase() : "");
  name.setAttribute("data-map", id);
  if (loop) name.setAttribute("data-loop", latest ? latest[0] : "");
  name.setAttribute("data-count", String(total));
  if (head) name.setAttribute("data-state", safeClass(head.state));
  const track = mergedTrack(items.length ? items : head ? [head] : [], scale);
  const cells = [name, track];
  if (!opened) return cells;
  for (const task of items) {
    const [label, row] = taskRow(task, task.task_id, scale);
    label.classList.add("tl-member");
    cells.push(label, row);
  }
  if (entry && items.length < entry.items && view.more) {
    const more = el("button", "load more " + members + " (" + count(items.length) + " of " + count(entry.items) +
      " shown)", "link");
    more.addEventListener("click", () => view.more(id));
    const label = el("div", null, "tl-name tl-member");
    label.appendChild(more);
    cells.push(label, el("div", null, "tl-track"));
  }
  return cells;
}

function axis(scale, step) {
  const line = el("div", null, "tl-axis");
  let count = 0;
  for (let at = 0; at <= scale.span + step / 1000; at = ++count * step) {
    // a label centred on the axis's end would stick out of the page: it ends there instead
    const tick = el("span", offset(at), at > 0.95 * scale.span ? "tl-tick end" : "tl-tick");
    tick.style.left = (100 * at / scale.span).toFixed(2) + "%";
    line.appendChild(tick);
  }
  return line;
}

function bar(cls, start, end, scale) {
  const node = el("div", null, "bar " + cls);
  node.style.left = (100 * (start - scale.t0) / scale.span).toFixed(2) + "%";
  node.style.width = (100 * Math.max(end - start, 0) / scale.span).toFixed(2) + "%";
  return node;
}

// A task's row: its name a button (reachable by Tab; the run's page shows its log lines on a
// click), what holds it, and its bars.
function taskRow(task, label, scale) {
  const name = el("div", null, "tl-name");
  const button = el("button", label + (task.cached ? " (cached)" : "") +
    (task.attempts > 1 ? " (" + task.attempts + " attempts)" : ""), "link tl-task");
  button.type = "button";
  name.appendChild(button);
  const held = task.held_by ? heldText(task.held_by, scale.now) : "";
  if (held) name.appendChild(el("div", held, "held"));
  name.title = task.task_id + " " + task.state + (task.error ? "\n" + task.error : "") +
    (held ? "\n" + held : "");
  name.setAttribute("data-task-id", task.task_id);
  name.setAttribute("data-task-name", task.name ?? task.task_name ?? "");
  name.setAttribute("data-state", safeClass(task.state));
  const track = el("div", null, "tl-track");
  for (const s of task.segments) {
    const end = s.end == null ? scale.now : s.end;
    const piece = bar(segmentClass(s), s.start, end, scale);
    piece.title = s.state + (s.outcome ? " → " + s.outcome : "") + " " + seconds(end - s.start);
    track.appendChild(piece);
  }
  return [name, track];
}

// One row for the tasks of one name: how many, how many failed, and their bars merged per
// kind (those closer than a pixel or so become one), so its cost is its bars, not its tasks.
function groupRow(name, members, opened, toggle, scale) {
  const counts = {};
  for (const task of members) counts[task.state] = (counts[task.state] || 0) + 1;
  const head = el("div", null, "tl-name tl-group");
  const button = el("button", (opened ? "▾ " : "▸ ") + name + " ×" + members.length, "link");
  button.setAttribute("aria-expanded", String(opened));
  button.addEventListener("click", toggle);
  head.appendChild(button);
  if (counts.FAILED) head.appendChild(span(" " + counts.FAILED + " failed", "c-FAILED"));
  head.title = members.length + " tasks named " + name + ": " +
    STATES.filter((s) => counts[s]).map((s) => counts[s] + " " + s.toLowerCase()).join(", ");
  head.setAttribute("data-group", name);
  head.setAttribute("data-count", String(members.length));
  return [head, mergedTrack(members, scale)];
}

// The bars of several tasks merged per kind (those closer than a pixel or so become one).
function mergedTrack(members, scale) {
  const kinds = new Map();
  for (const task of members) for (const s of task.segments) {
    const cls = segmentClass(s);
    if (!kinds.has(cls)) kinds.set(cls, []);
    kinds.get(cls).push([s.start, s.end == null ? scale.now : s.end]);
  }
  const track = el("div", null, "tl-track");
  const near = scale.span / 1000;
  const layer = (cls) => LAYERS.indexOf(cls);
  for (const cls of [...kinds.keys()].sort((a, b) => layer(a) - layer(b))) {
    const spans = kinds.get(cls).sort((a, b) => a[0] - b[0]);
    let [from, to] = spans[0];
    for (const [start, end] of spans) {
      if (start > to + near) {
        track.appendChild(bar(cls, from, to, scale));
        from = start;
      }
      to = Math.max(to, end);
    }
    track.appendChild(bar(cls, from, to, scale));
  }
  return track;
}

// What holds a blocked task back, in words (the CLI's `watch` and `why` say the same).
function holdText(h, now) {
  const scope = h.scope ? " on " + h.scope : "";
  const issued = (h.issued_by ? " by " + h.issued_by : "") +
    (h.reason ? " " + quoted(h.reason) : "");
  if (h.type === "sync") return "waiting for the broker's retained constraints";
  if (h.type === "queued") {
    const kind = { threads: "threads", processes: "worker processes" }[h.executor] || "workers";
    return "waiting for one of " + (h.workers ?? "its executor's") + " " + kind + " (all busy)";
  }
  if (h.type === "decision") {
    const deadline = h.deadline != null ? ", " + (h.default || "fail") + " at " + dueAt(h.deadline, now) : "";
    if (h.kind === "approval") return "awaiting approval: " + quoted(h.prompt || "") + deadline;
    return "attempt " + (h.attempt ?? "?") + " failed, waiting for a decision" + deadline;
  }
  if (h.type === "concurrency" && h.limit != null) {
    const names = Object.entries(h.holders || {}).slice(0, 3).map(([n, c]) => c + " " + n).join(", ");
    return "concurrency " + (h.running ?? h.limit) + "/" + h.limit + scope +
      (names ? " (running: " + names + ")" : "") + issued;
  }
  if (h.type === "rate_limit") {
    const next = h.next_start != null ? ", next start " + dueAt(h.next_start, now) : "";
    return "rate_limit " + (h.rate || "") + scope + next + issued;
  }
  if (h.type === "resource" && h.resource != null) {
    const used = (h.in_use ?? "?") + " of " + (h.capacity ?? "?") + " in use";
    const users = Object.entries(h.users || {}).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([id]) => id);
    const why = h.ahead ? used + "; " + h.ahead + " waits for it first"
      : used + (users.length ? " by " + users.join(", ") : "");
    return "resource:" + h.resource + (h.amount != null ? " needs " + h.amount : "") + " (" + why + ")";
  }
  return h.type + scope + issued;
}

function heldText(holds, now) {
  return holds.length ? "held: " + holds.map((h) => holdText(h, now)).join("; ")
    : "held: nothing now (waits for a free slot)";
}
