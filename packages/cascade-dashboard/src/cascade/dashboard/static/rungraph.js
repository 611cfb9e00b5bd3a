// A run page's task graph: asked of the dashboard (GET /api/runs/{id}/graph) once when the
// run opens, drawn into its container (graph.js), and its tasks' states drawn again at each
// repaint from the run's tasks, live or recorded, without a new layout. A run whose graph has not come (an engine
// that sends none, a dashboard that joined after the run's start) is asked again now and then
// while it runs; the container says why there is none.
import { ask } from "./api.js";
import { el } from "./dom.js";
import { drawGraph } from "./graph.js";

const ASK_AGAIN = 5000; // ms between asks for a running run's graph that has not come
let asked = { run: null, at: 0, answer: null, pending: false };

// Draw run ``run``'s graph ({run_id, live}: live, it runs and this page follows it) into
// ``container`` with its ``tasks`` (an array or live.js's Map), asking for the graph first where
// this run's has not been asked for; ``redraw`` is called when it comes. ``options``: graph.js's
// (``maps``, ``selected``).
export function showRunGraph(container, run, tasks, redraw, options = {}) {
  const now = Date.now();
  if (asked.run !== run.run_id) asked = { run: run.run_id, at: 0, answer: null, pending: false };
  const missing = !asked.answer || (asked.answer.graph == null && run.live);
  if (missing && !asked.pending && now - asked.at >= (asked.at ? ASK_AGAIN : 0)) {
    const mine = asked;
    mine.pending = true;
    mine.at = now;
    ask("GET", "/api/runs/" + encodeURIComponent(run.run_id) + "/graph").then(
      // {run_id, nodes: [...]}: the graph; {run_id, nodes: null, why}: why there is none
      (answer) => ({ graph: answer && Array.isArray(answer.nodes) ? answer : null,
        why: answer && typeof answer.why === "string" ? answer.why : "no graph sent" }),
      (error) => ({ graph: null, why: "no graph: " + (error.status ? error.message : "the dashboard's answer was not one") }),
    ).then((answer) => {
      mine.pending = false;
      if (asked !== mine) return; // another run opened meanwhile
      mine.answer = answer;
      redraw();
    });
  }
  if (!asked.answer) {
    if (container.getAttribute("data-asking") !== run.run_id) { // not the last run's graph
      container.setAttribute("data-asking", run.run_id);
      container.replaceChildren(el("p", "asking for the run's graph\u2026", "note"));
    }
    return;
  }
  container.removeAttribute("data-asking");
  drawGraph(container, asked.answer.graph, tasks, { ...options, why: asked.answer.why });
}
