// A task log panel: lines in cascade.interfaces.LogLine's field names (ts: ISO text, or epoch
// seconds as the history gives it; task_name, attempt, level, stream, logger, message), as
// rows "HH:MM:SS.mmm task#attempt LEVEL logger: message". The run's page draws
// its live tail (an open run's lines) and its recorded lines with it. Every string came from an engine:
// it reaches the page through textContent only.

function logTime(ts) {
  const when = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  return isNaN(when) ? String(ts) : when.toISOString().slice(11, 23);
}

// Append `lines` to `container` (a block element); `options.clear` empties it first.
export function drawLogLines(container, lines, options) {
  if (options && options.clear) container.replaceChildren();
  for (const line of lines) {
    const div = document.createElement("div");
    div.className = "log-line log-" + String(line.level || "INFO").toLowerCase().replace(/[^a-z]/g, "");
    const task = line.task_name + (line.attempt > 1 ? "#" + line.attempt : "");
    const who = line.logger || line.stream || "";
    for (const [text, className] of [
      [logTime(line.ts), "log-ts"],
      [task, "log-task"],
      [line.level, "log-level"],
      [who ? who + ":" : "", "log-logger"],
      [line.message, "log-message"],
    ]) {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text == null ? "" : String(text);
      div.appendChild(span);
      div.appendChild(document.createTextNode(" "));
    }
    container.appendChild(div);
  }
}
