// Building the page's elements. Every string from the broker (or the history, which has it from
// the broker) is attacker-controlled: it only ever reaches the page through textContent or
// setAttribute, never as HTML.
import { shortId } from "./format.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell == null ? "" : String(cell);
    tr.appendChild(td);
  }
  return tr;
}

// Each cell of a one-line row titled with its whole text (a cell cut with an ellipsis says
// it all on hover), unless it has a title of its own; ``tr`` returned.
export function titled(tr) {
  for (const td of tr.cells) {
    const text = td.textContent.replace(/\s+/g, " ").trim();
    if (text && !td.hasAttribute("title")) td.title = text;
  }
  return tr;
}

export function span(text, className) { return el("span", text, className); }

export function safeClass(value) { return /^[A-Za-z_]+$/.test(String(value)) ? String(value) : "unknown"; }

export function replace(tbody, rows) { tbody.replaceChildren(...rows); }

// A run's id as a link-like button: its short id, the whole id as its title; `open` on a click.
export function runButton(runId, className, open) {
  const button = el("button", shortId(runId), className);
  button.title = runId;
  button.addEventListener("click", open);
  return button;
}

// An engine's traceback, shown as text (never as HTML) on demand.
export function traceback(text) {
  const shown = el("details", null, "traceback");
  shown.appendChild(el("summary", "traceback"));
  shown.appendChild(el("pre", text));
  return shown;
}

// A table's rows, or one saying "none" across its columns: an empty section says so.
// ``inPlace``: drawn with updateRows (its rows' listeners depend on nothing but their keys).
export function fillTable(table, rows, { inPlace = false } = {}) {
  if (!rows.length) {
    const none = el("td", "none", "note");
    none.colSpan = table.tHead.rows[0].cells.length;
    rows = [el("tr", null, "none")];
    rows[0].appendChild(none);
  }
  (inPlace ? updateRows : replace)(table.tBodies[0], rows);
}

// A table body's rows drawn again in place: a row already there under the same key (its
// data-run-id, data-task-id or data-map; else its class and place) is kept and only its cells
// that changed are swapped, so a person's selection, focus and scroll in the rest survive a
// repaint, and a script holding a row does not find it gone. Only where a row's listeners
// depend on nothing but its key: a kept cell keeps the listeners it was made with.
const ROW_KEYS = ["data-run-id", "data-task-id", "data-map"];
function rowKey(tr, index) {
  for (const name of ROW_KEYS) if (tr.hasAttribute(name)) return name + "=" + tr.getAttribute(name);
  return tr.className + "#" + index;
}

export function updateRows(tbody, rows) {
  const there = new Map();
  [...tbody.rows].forEach((tr, i) => there.set(rowKey(tr, i), tr));
  const kept = rows.map((tr, i) => {
    const key = rowKey(tr, i);
    const old = there.get(key);
    if (!old) return tr;
    there.delete(key);
    if (old.isEqualNode(tr)) return old;
    for (const { name } of [...old.attributes]) if (!tr.hasAttribute(name)) old.removeAttribute(name);
    for (const { name, value } of [...tr.attributes]) if (old.getAttribute(name) !== value) old.setAttribute(name, value);
    const cells = [...tr.cells];
    if (cells.length !== old.cells.length) old.replaceChildren(...cells);
    else cells.forEach((td, c) => { if (!old.cells[c].isEqualNode(td)) old.cells[c].replaceWith(td); });
    return old;
  });
  for (const tr of there.values()) tr.remove();
  kept.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
}

// A list's items, or one item saying "none" (or what empty says).
export function fillList(list, items, empty = "none") {
  list.replaceChildren(...(items.length ? items : [el("li", empty, "none note")]));
}
