// Task log lines as the page shows them: one row each, "HH:MM:SS.mmm LEVEL task#attempt
// logger: message", text only (textContent: a line's text never becomes markup).
"use strict";

function renderLogLines(container, lines) {
  const rows = lines.map((line) => {
    const row = document.createElement("div");
    const when = new Date(line.ts);
    const clock = isNaN(when) ? String(line.ts) : when.toTimeString().slice(0, 8) + "." +
      String(when.getMilliseconds()).padStart(3, "0");
    const task = line.task_name + (line.attempt > 1 ? "#" + line.attempt : "");
    const who = line.logger || line.stream || "";
    row.textContent = clock + " " + line.level.padEnd(8) + " " + task + " " +
      (who ? who + ": " : "") + line.message;
    row.className = "log-line log-" + String(line.level).replace(/[^A-Z]/g, "");
    return row;
  });
  container.replaceChildren(...rows);
}
