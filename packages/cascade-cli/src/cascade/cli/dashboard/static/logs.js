// A task log panel: lines in cascade.interfaces.LogLine's field names (ts: ISO text, or epoch
// seconds as the history gives it; task_name, level, message, stream, n, attempt), appended
// to a container as rows. Shared by the History section (recorded lines) and the live panel.
// Every string came from an engine: it reaches the page through textContent only.
"use strict";

function logTime(ts) {
  const when = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  return isNaN(when) ? String(ts) : when.toISOString().slice(11, 23);
}

// Append `lines` to `container` (a block element); `options.clear` empties it first.
function drawLogLines(container, lines, options) {
  if (options && options.clear) container.replaceChildren();
  for (const line of lines) {
    const div = document.createElement("div");
    div.className = "log-line log-" + String(line.level || "INFO").toLowerCase().replace(/[^a-z]/g, "");
    for (const [text, className] of [
      [logTime(line.ts), "log-ts"],
      [line.task_name, "log-task"],
      [line.stream || line.level, "log-level"],
      [line.message, "log-message"],
    ]) {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text == null ? "" : String(text);
      div.appendChild(span);
      div.appendChild(document.createTextNode(" "));
    }
    if (line.attempt > 1) div.title = "attempt " + line.attempt;
    container.appendChild(div);
  }
}
