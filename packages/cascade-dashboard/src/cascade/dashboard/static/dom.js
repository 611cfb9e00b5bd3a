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
export function fillTable(table, rows) {
  if (!rows.length) {
    const none = el("td", "none", "note");
    none.colSpan = table.tHead.rows[0].cells.length;
    rows = [el("tr", null, "none")];
    rows[0].appendChild(none);
  }
  replace(table.tBodies[0], rows);
}

// A list's items, or one item saying "none" (or what empty says).
export function fillList(list, items, empty = "none") {
  list.replaceChildren(...(items.length ? items : [el("li", empty, "none note")]));
}
