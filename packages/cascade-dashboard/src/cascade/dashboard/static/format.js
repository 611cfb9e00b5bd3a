// Numbers, times and run ids as the page says them (as the CLI does).

export const SHORT_ID = 12; // a run id's digits every view shows: cascade.control.SHORT_ID (a test keeps them equal)

export function shortId(runId) { return runId.slice(0, SHORT_ID); }

export function seconds(value) {  // as the CLI's duration(): 12.3s, 4m05s, 2h05m, 3d04h
  if (!(value >= 0)) return "-";
  if (value < 59.95) return value.toFixed(1) + "s";
  const whole = Math.round(value), pad = (n) => String(n).padStart(2, "0");
  const minutes = Math.floor(whole / 60), hours = Math.floor(minutes / 60);
  if (minutes < 60) return minutes + "m" + pad(whole % 60) + "s";
  if (hours < 24) return hours + "h" + pad(minutes % 60) + "m";
  return Math.floor(hours / 24) + "d" + pad(hours % 24) + "h";
}

export function clock(epoch) { return new Date(epoch * 1000).toISOString().slice(11, 19) + " UTC"; }

// A moment to come, seen at `now`: "12:00:00 UTC (in 4m05s)".
export function dueAt(epoch, now) { return clock(epoch) + " (in " + seconds(epoch - now) + ")"; }

// A date and time: "2026-01-02 03:04:05 UTC" ("-": none).
export function at(epoch) { return epoch == null ? "-" : new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC"; }

// A duration in milliseconds: "850 ms", else as seconds() says it.
// As at(), as short as a list's column has room for: "11-29 09:03:30" (UTC; at() its title).
export function shortAt(epoch) { return epoch == null ? "-" : new Date(epoch * 1000).toISOString().replace("T", " ").slice(5, 19); }

export function took(ms) { return ms == null ? "-" : ms < 1000 ? Math.round(ms) + " ms" : seconds(ms / 1000); }

export function count(n) { return Number(n).toLocaleString("en"); }

// What someone wrote (a reason), in quotes: “API back”.
export function quoted(text) { return "\u201c" + text + "\u201d"; }

// A constraint's or a start's params: "limit=2, rate=5/s" ("-": none).
export function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => k + "=" + v).join(", ") || "-";
}
