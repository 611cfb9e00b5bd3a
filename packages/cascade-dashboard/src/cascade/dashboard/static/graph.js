// A run's task graph drawn as SVG (layout.js lays it out, left to right): a box per task saying
// its name and its state in words as well as in its state's colour, an edge per dependency (a
// condition's dashed, an order-only one's dotted). A mapped task is one box with its items' counts by state ("2,000 items:
// 1,980 completed, 3 failed, 17 running"), never a box per item, and a button that opens it.
// Drawn again with the same graph, only what the tasks changed is redrawn: the layout is kept
// per graph. Its layers stand left to right, never wrapped back (layout.js): the drawing opens
// scaled to fit its box (as wide as the container, at most MAX_HEIGHT tall, never above its own
// size), and zooms and pans: the box's "+", "−" and "fit" buttons, Ctrl (or ⌘) and the
// wheel, a drag, the keys +, - and 0 on a box; a box focused out of sight is brought into it.
// However small a box is drawn, its title says its name and state on hover. Every string from
// the broker reaches the page through textContent or setAttribute only.
//
// A box is a button: a click, Enter or Space on it dispatches "graph-select" ({taskId}) on the
// container, the open button of a mapped task's box "graph-open" ({taskId}). The graph is one
// stop of Tab (the box focused last, and its open button), and the arrow keys move between its
// boxes (up and down in a layer, left and right along the edges).
import { el } from "./dom.js";
import { count } from "./format.js";
import { layOut } from "./layout.js";
import { mapOf } from "./timeline.js";

const SVG = "http://www.w3.org/2000/svg";
const LAYOUTS_KEPT = 8;   // the last few graphs' layouts: a page that goes back and forth
const CHAR = { name: 7.3, line: 6.7 }; // a character's width in px: the boxes' text is monospace
const PAD = 10;
const MAX_HEIGHT = 440;     // px: the tallest a graph's box opens (a 900 px screen keeps room)
const MIN_HEIGHT = 120;     // px: the shortest, where the controls and a drag have room
const ZOOM_STEP = 1.25;     // a "+" or "−"
const MAX_SCALE = 2;        // the most a drawing is zoomed in
const DRAGGED = 4;          // px a pointer moves before a press is a drag, not a click
const layouts = new Map();  // a graph's key (its nodes as JSON) -> its layout
const keys = new WeakMap(); // a graph -> its key
const drawings = new WeakMap(); // a container -> what is drawn in it
let markers = 0;            // each drawing's arrowhead has an id of its own
window.cascadeGraphLayouts = 0; // layouts computed, read by the tests

// Draw ``graph`` ({nodes: [{id, name, after, map?, conditions?, order?}]}, or null) into ``container``
// with its tasks' states from ``tasks`` (the run's tasks: an array or a Map's values, each with
// task_id and state; a mapped task's items are those with ids "<id>[i]"). ``options``: ``why``,
// what the container says when the graph is null; ``maps``, a run's maps as the history counts
// them ([{task_id, items, counts}], over the items among ``tasks``); ``selected``, a task's id
// drawn as the one selected.
export function drawGraph(container, graph, tasks, options = {}) {
  if (graph == null || typeof graph !== "object" || !Array.isArray(graph.nodes)) {
    drawings.delete(container);
    const why = graph == null ? options.why || "no graph sent" : "the graph sent is not one (no list of nodes)";
    container.replaceChildren(el("p", why, "note graph-why"));
    return;
  }
  let nodesKey = keys.get(graph);
  if (nodesKey === undefined) keys.set(graph, nodesKey = JSON.stringify(graph.nodes));
  let drawing = drawings.get(container);
  if (!drawing || drawing.nodesKey !== nodesKey || !drawing.svg.isConnected ||
      drawing.view.parentNode !== container) {
    if (drawing) drawing.resized.disconnect();
    // its width read before the drawing is in it: the page laid out once, not again for it
    const room = container.clientWidth;
    drawing = draw(container, layoutOf(nodesKey, graph), nodesKey);
    drawings.set(container, drawing);
    sized(drawing, room);
    // a container that changes width (the window's, or shown from hidden) fits it again,
    // without a new layout and without reading its width at each repaint
    drawing.resized = new ResizeObserver(([entry]) => sized(drawing, Math.floor(entry.contentRect.width)));
    drawing.resized.observe(container);
  }
  paint(drawing, tasks, options);
}

function layoutOf(key, graph) {
  let layout = layouts.get(key);
  if (layout) {
    layouts.delete(key); // most recently used last
  } else {
    layout = layOut(graph);
    window.cascadeGraphLayouts += 1;
  }
  layouts.set(key, layout);
  if (layouts.size > LAYOUTS_KEPT) layouts.delete(layouts.keys().next().value);
  return layout;
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const name in attributes) node.setAttribute(name, String(attributes[name]));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A line cut to ``room`` characters, its end an ellipsis where it was cut.
function fitted(text, room) {
  return text.length <= room ? text : text.slice(0, Math.max(1, room - 1)) + "\u2026";
}

const round = (value) => Math.round(value * 10) / 10;

// An edge through its points: a curve between layers, straight across each layer it crosses
// (points 2, 4, ...: where it leaves a layer it entered at the point before).
function edgePath(points) {
  let d = "M" + round(points[0][0]) + "," + round(points[0][1]);
  for (let i = 1; i < points.length; i += 1) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    if (i % 2 === 0) {
      d += "L" + round(x1) + "," + round(y1);
    } else {
      const middle = round((x0 + x1) / 2);
      d += "C" + middle + "," + round(y0) + " " + middle + "," + round(y1) + " " + round(x1) + "," + round(y1);
    }
  }
  return d;
}

// A task's box, empty: its title, its outline, its name's and its state's lines (and a mapped
// task's two lines of counts).
function boxTemplate(node) {
  const box = svg("g", { class: "node", tabindex: -1, role: "button" });
  box.appendChild(svg("title", {}));
  box.appendChild(svg("rect", { class: "box", width: node.width, height: node.height, rx: 4 }));
  box.appendChild(svg("text", { class: "name", x: PAD, y: 16 }));
  box.appendChild(svg("text", { class: "state", x: PAD, y: 32 }));
  if (node.map) for (const y of [48, 64]) box.appendChild(svg("text", { class: "items", x: PAD, y }));
  return box;
}

function draw(container, layout, nodesKey) {
  const marker = "graph-arrow-" + (markers += 1);
  const root = svg("svg", { class: "graph", role: "group",
    // no stop of Tab of its own (Chrome makes an svg one where most of what it holds is not)
    tabindex: -1,
    "aria-label": "task graph: " + count(layout.nodes.length) + " tasks, " + count(layout.edges.length) +
      " dependencies; the arrow keys move between tasks, + and - zoom, 0 fits it to its box" });
  const defs = svg("defs", {});
  const arrow = svg("marker", { id: marker, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 8,
    markerHeight: 8, orient: "auto", markerUnits: "userSpaceOnUse" });
  arrow.appendChild(svg("path", { d: "M0,0L8,4L0,8z", class: "arrow" }));
  defs.appendChild(arrow);
  const edges = svg("g", { class: "edges" });
  for (const edge of layout.edges) {
    const kind = edge.condition ? "edge condition" : edge.order ? "edge order" : "edge";
    edges.appendChild(svg("path", { class: kind, d: edgePath(edge.points),
      "marker-end": "url(#" + marker + ")", "data-from": edge.from, "data-to": edge.to }));
  }
  const boxes = svg("g", { class: "nodes" });
  const nodes = new Map();
  const templates = new Map(); // a box of each size, cloned for each task: faster than built anew
  // in reading order (by layer, then top to bottom): the order Tab goes through them
  const order = layout.nodes.slice().sort((a, b) => a.layer - b.layer || a.y - b.y);
  for (const node of order) {
    const size = node.width + "x" + node.height + (node.map ? "m" : "");
    let template = templates.get(size);
    if (!template) templates.set(size, template = boxTemplate(node));
    const box = template.cloneNode(true);
    box.setAttribute("transform", "translate(" + round(node.x) + "," + round(node.y) + ")");
    box.setAttribute("data-task-id", node.id);
    const [title, , name, state, ...lines] = box.children;
    name.textContent = fitted(node.name, Math.floor((node.width - 2 * PAD - (node.map ? 56 : 0)) / CHAR.name));
    boxes.appendChild(box);
    const parts = { node, box, title, state, lines, said: null, open: null };
    nodes.set(node.id, parts);
    if (node.map) {
      // its open button: after its box (Tab reaches it next), over its top right corner
      const open = svg("g", { class: "open", tabindex: -1, role: "button", "data-open": node.id,
        transform: "translate(" + round(node.x + node.width - 56) + "," + round(node.y + 4) + ")",
        "aria-label": "open the items of " + node.name });
      open.appendChild(svg("rect", { width: 50, height: 16, rx: 3 }));
      open.appendChild(svg("text", { x: 6, y: 12 }, "items \u25b8"));
      boxes.appendChild(open);
      parts.open = open;
    }
  }
  const scene = svg("g", { class: "scene" });
  scene.append(edges, boxes);
  root.append(defs, scene);
  const view = el("div", null, "graph-view");
  const tools = el("div", null, "graph-tools");
  // buttons for a mouse: the keyboard's are +, - and 0 on a box (the graph stays one stop of Tab)
  for (const [zoom, label, title] of [["in", "+", "zoom in"], ["out", "\u2212", "zoom out"],
    ["fit", "fit", "the whole graph in its box"]]) {
    const button = el("button", label);
    button.type = "button";
    button.tabIndex = -1;
    button.title = title;
    button.setAttribute("data-zoom", zoom);
    tools.appendChild(button);
  }
  const scale = el("span", "", "note graph-scale");
  tools.appendChild(scale);
  view.append(root, tools);
  const shown = [];
  const { dropped } = layout;
  const left = [[dropped.nodes, "node without an id", "nodes without an id"],
    [dropped.duplicates, "second node under one id", "second nodes under one id"],
    [dropped.unknown, "dependency on a task the graph does not have", "dependencies on tasks the graph does not have"],
    [dropped.cycles, "dependency closing a cycle", "dependencies closing a cycle"]]
    .filter(([n]) => n).map(([n, one, many]) => count(n) + " " + (n === 1 ? one : many));
  if (left.length) shown.push(el("p", "left out of the graph: " + left.join(", "), "note graph-dropped"));
  if (!layout.nodes.length) shown.push(el("p", "the graph has no tasks", "note graph-why"));
  shown.push(view);
  container.replaceChildren(...shown);
  const drawing = { nodesKey, svg: root, scene, view, scale, nodes, layout, container, current: null,
    room: null, fitted: true, k: 1, x: 0, y: 0, height: 0, resized: null };
  if (order.length) makeCurrent(drawing, order[0].id);
  listen(drawing);
  return drawing;
}

// The drawing's box sized to its container's width ``width`` (0: a container not laid out,
// hidden: the drawing's own), and the drawing fitted to it again unless zoomed or panned since.
function sized(drawing, width) {
  const { layout } = drawing;
  const room = width || Math.ceil(layout.width);
  if (room === drawing.room) return;
  drawing.room = room;
  const k = fitScale(layout, room);
  drawing.height = Math.max(MIN_HEIGHT, Math.ceil(layout.height * k));
  drawing.svg.setAttribute("width", String(room));
  drawing.svg.setAttribute("height", String(drawing.height));
  if (drawing.fitted) fit(drawing);
  else moveTo(drawing, drawing.k, drawing.x, drawing.y);
}

// The scale at which the whole drawing fits ``room`` px wide and MAX_HEIGHT tall, never above 1.
function fitScale(layout, room) {
  return Math.min(1, room / Math.max(1, layout.width), MAX_HEIGHT / Math.max(1, layout.height));
}

function fit(drawing) {
  const { layout, room, height } = drawing;
  const k = fitScale(layout, room);
  moveTo(drawing, k, (room - layout.width * k) / 2, (height - layout.height * k) / 2);
  drawing.fitted = true;
}

// The drawing at scale ``k``, its top left at (x, y) of its box; kept from leaving the box
// wholly (a part of it stays in sight).
function moveTo(drawing, k, x, y) {
  const { layout, room, height } = drawing;
  const keep = 40;
  x = Math.min(room - keep, Math.max(keep - layout.width * k, x));
  y = Math.min(height - keep, Math.max(keep - layout.height * k, y));
  Object.assign(drawing, { k, x, y, fitted: false });
  drawing.scene.setAttribute("transform", "translate(" + round(x) + "," + round(y) + ") scale(" + k.toFixed(4) + ")");
  drawing.scale.textContent = Math.round(100 * k) + "%";
}

// Zoomed by ``factor`` about the point (px, py) of its box (its middle where not given).
function zoom(drawing, factor, px = drawing.room / 2, py = drawing.height / 2) {
  const least = Math.min(fitScale(drawing.layout, drawing.room), 1);
  const k = Math.min(MAX_SCALE, Math.max(least, drawing.k * factor));
  moveTo(drawing, k, px - (px - drawing.x) * (k / drawing.k), py - (py - drawing.y) * (k / drawing.k));
}

// A box brought into sight where it is not (focused by the keyboard while zoomed in).
function reveal(drawing, node) {
  const { k, room, height } = drawing;
  const left = drawing.x + node.x * k, top = drawing.y + node.y * k;
  const right = left + node.width * k, bottom = top + node.height * k;
  if (left >= 0 && top >= 0 && right <= room && bottom <= height) return;
  moveTo(drawing, k, room / 2 - (node.x + node.width / 2) * k, height / 2 - (node.y + node.height / 2) * k);
}

// The one box Tab stops at (and its open button, a map's), the last one focused: a graph of
// 2,000 tasks is one stop on the way through the page, the arrow keys move within it.
function makeCurrent(drawing, id) {
  const previous = drawing.nodes.get(drawing.current);
  if (previous) {
    previous.box.setAttribute("tabindex", "-1");
    if (previous.open) previous.open.setAttribute("tabindex", "-1");
  }
  const parts = drawing.nodes.get(id);
  parts.box.setAttribute("tabindex", "0");
  if (parts.open) parts.open.setAttribute("tabindex", "0");
  drawing.current = id;
}

// Each task's state and, for a mapped task, its items' counts; a box redrawn only when what it
// says changed.
function paint(drawing, tasks, options) {
  const own = new Map();
  const items = new Map(); // a mapped task's id -> {state: count}
  for (const task of tasks instanceof Map ? tasks.values() : tasks || []) {
    if (!task || typeof task.task_id !== "string") continue;
    if (drawing.nodes.has(task.task_id)) {
      own.set(task.task_id, task);
      continue;
    }
    const map = mapOf(task.task_id);
    if (map === null || !drawing.nodes.has(map)) continue;
    const counts = items.get(map) || items.set(map, Object.create(null)).get(map);
    const state = String(task.state);
    counts[state] = (counts[state] || 0) + 1;
  }
  const counted = new Map();
  for (const entry of Array.isArray(options.maps) ? options.maps : []) {
    if (entry && drawing.nodes.has(entry.task_id)) counted.set(entry.task_id, entry);
  }
  for (const [id, parts] of drawing.nodes) {
    const task = own.get(id);
    const { node } = parts;
    let total = 0;
    let counts = {};
    if (node.map) {
      const entry = counted.get(id);
      counts = entry && entry.counts && typeof entry.counts === "object" ? entry.counts : items.get(id) || {};
      total = entry && Number.isFinite(entry.items) ? entry.items : Object.values(counts).reduce((a, b) => a + b, 0);
    }
    const state = task ? String(task.state) : node.map && total ? "RUNNING" : "PENDING";
    const word = state.toLowerCase();
    const itemsText = node.map ? itemsSaid(total, counts) : "";
    const label = node.name + ": " + word + (node.map ? ", " + itemsText : "");
    const selected = options.selected === id;
    const error = task && typeof task.error === "string" ? task.error : "";
    const said = label + "\u0000" + selected + "\u0000" + error;
    if (said === parts.said) continue;
    parts.said = said;
    parts.box.setAttribute("class", "node c-" + (/^[A-Z_]+$/.test(state) ? state : "unknown") +
      (node.map ? " mapped" : "") + (selected ? " selected" : ""));
    parts.box.setAttribute("data-state", state);
    parts.box.setAttribute("aria-label", label);
    parts.title.textContent = node.name + " (" + id + "): " + word + (node.map ? ", " + itemsText : "") +
      (error ? "\n" + error : "");
    parts.state.textContent = node.map ? word + " \u00b7 " + count(total) + " items" : word;
    if (node.map) {
      const lines = wrapped(countsSaid(counts), Math.floor((node.width - 2 * PAD) / CHAR.line), parts.lines.length);
      parts.lines.forEach((line, i) => { line.textContent = lines[i] || ""; });
    }
  }
}

// A mapped task's items by state, what came of them first ("1,980 completed, 3 failed, 17
// running"), then any state the wire had that the page does not know.
const TALLY = ["COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "HELD", "BLOCKED", "QUEUED", "RETRYING", "RUNNING"];
function countsSaid(counts) {
  const states = TALLY.filter((s) => counts[s]).concat(Object.keys(counts).filter((s) => !TALLY.includes(s) && counts[s]));
  return states.map((s) => count(counts[s]) + " " + s.toLowerCase());
}

function itemsSaid(total, counts) {
  const said = countsSaid(counts);
  return count(total) + (total === 1 ? " item" : " items") + (said.length ? ": " + said.join(", ") : "");
}

// Phrases on at most ``most`` lines of ``room`` characters, the last cut with an ellipsis
// where they do not all fit (the box's title and label say them all).
function wrapped(phrases, room, most) {
  const lines = [];
  for (let i = 0; i < phrases.length; i += 1) {
    const phrase = phrases[i] + (i < phrases.length - 1 ? "," : "");
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + phrase.length <= room) lines[last] += " " + phrase;
    else lines.push(phrase);
  }
  if (lines.length > most) {
    lines.length = most;
    lines[most - 1] = fitted(lines[most - 1] + " \u2026", room);
  }
  return lines.map((line) => fitted(line, room));
}

// Clicks and keys, on the drawing's root once: select a box, open a mapped one, move between.
function listen(drawing) {
  const { svg: root, container } = drawing;
  const send = (name, taskId) => container.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: { taskId } }));
  const act = (target) => {
    const open = target.closest("[data-open]");
    if (open) return send("graph-open", open.getAttribute("data-open"));
    const box = target.closest("[data-task-id]");
    if (box) send("graph-select", box.getAttribute("data-task-id"));
  };
  let press = null; // a pointer down on the drawing: where, and whether it became a drag
  root.addEventListener("click", (event) => {
    if (press && press.dragged) { press = null; return; } // a drag's end is no click
    act(event.target);
  });
  root.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    press = { id: event.pointerId, from: [event.clientX, event.clientY], at: [drawing.x, drawing.y], dragged: false };
  });
  root.addEventListener("pointermove", (event) => {
    if (!press || press.id !== event.pointerId) return;
    const dx = event.clientX - press.from[0], dy = event.clientY - press.from[1];
    if (!press.dragged && Math.hypot(dx, dy) < DRAGGED) return;
    if (!press.dragged) root.setPointerCapture(event.pointerId);
    press.dragged = true;
    moveTo(drawing, drawing.k, press.at[0] + dx, press.at[1] + dy);
  });
  const release = (event) => {
    if (press && press.id === event.pointerId && !press.dragged) press = null;
  };
  root.addEventListener("pointerup", release);
  root.addEventListener("pointercancel", () => { press = null; });
  root.addEventListener("wheel", (event) => {
    if (!event.ctrlKey && !event.metaKey) return; // a bare wheel scrolls the page, as everywhere
    event.preventDefault();
    const bounds = root.getBoundingClientRect();
    zoom(drawing, event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event.clientX - bounds.left, event.clientY - bounds.top);
  }, { passive: false });
  drawing.view.querySelector(".graph-tools").addEventListener("click", (event) => {
    const button = event.target.closest("[data-zoom]");
    if (!button) return;
    const how = button.getAttribute("data-zoom");
    if (how === "fit") fit(drawing);
    else zoom(drawing, how === "in" ? ZOOM_STEP : 1 / ZOOM_STEP);
  });
  root.addEventListener("focusin", (event) => {
    const box = event.target.closest("[data-task-id], [data-open]");
    const id = box && (box.getAttribute("data-task-id") ?? box.getAttribute("data-open"));
    if (id !== null && id !== drawing.current && drawing.nodes.has(id)) makeCurrent(drawing, id);
    if (id !== null && drawing.nodes.has(id)) reveal(drawing, drawing.nodes.get(id).node);
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      act(event.target);
      return;
    }
    if (event.key === "+" || event.key === "=" || event.key === "-" || event.key === "0") {
      event.preventDefault();
      if (event.key === "0") fit(drawing);
      else zoom(drawing, event.key === "-" ? 1 / ZOOM_STEP : ZOOM_STEP);
      const box = event.target.closest("[data-task-id]");
      if (box) reveal(drawing, drawing.nodes.get(box.getAttribute("data-task-id")).node);
      return;
    }
    const box = event.target.closest("[data-task-id]");
    const next = box && nextBox(drawing, box.getAttribute("data-task-id"), event.key);
    if (next) {
      event.preventDefault();
      drawing.nodes.get(next).box.focus();
    }
  });
}

// The box an arrow key moves to from ``id``'s: the next up or down its layer, or the nearest
// (in height) of those its edges lead to (right) or come from (left), else of the next layer's.
function nextBox(drawing, id, key) {
  const { layout } = drawing;
  if (!drawing.layers) { // worked out on the first move, not on every drawing
    drawing.layers = [];
    for (const node of layout.nodes) (drawing.layers[node.layer] ||= []).push(node);
    for (const layer of drawing.layers) layer.sort((a, b) => a.y - b.y);
    drawing.before = new Map();
    drawing.after = new Map();
    for (const edge of layout.edges) {
      (drawing.after.get(edge.from) || drawing.after.set(edge.from, []).get(edge.from)).push(edge.to);
      (drawing.before.get(edge.to) || drawing.before.set(edge.to, []).get(edge.to)).push(edge.from);
    }
  }
  const node = drawing.nodes.get(id).node;
  const layer = drawing.layers[node.layer];
  const nearest = (candidates) => candidates.reduce((best, n) =>
    !best || Math.abs(n.y - node.y) < Math.abs(best.y - node.y) ? n : best, null);
  if (key === "ArrowDown" || key === "ArrowUp") {
    const found = layer[layer.indexOf(node) + (key === "ArrowDown" ? 1 : -1)];
    return found ? found.id : null;
  }
  if (key !== "ArrowRight" && key !== "ArrowLeft") return null;
  const linked = (key === "ArrowRight" ? drawing.after : drawing.before).get(id) || [];
  const found = nearest(linked.map((other) => drawing.nodes.get(other).node)) ||
    nearest(drawing.layers[node.layer + (key === "ArrowRight" ? 1 : -1)] || []);
  return found ? found.id : null;
}
