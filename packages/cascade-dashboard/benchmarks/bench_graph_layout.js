// The page's side of bench_graph_layout.py: one engine's layout of a graph, timed, and its
// crossings and backward edges counted; the result left in window.benchResult.
const [graph, engine, room, runs] = arguments;
window.benchResult = null;
const done = (found) => { window.benchResult = found; };
const box = (n) => (n.map ? window.MAPPED : window.NODE);
async function lay() {
  if (engine === "layout.js" || engine === "baseline") {
    const laid = (engine === "baseline" ? window.layOutBefore : window.layOut)(graph, room ?? Infinity);
    return { nodes: laid.nodes, edges: laid.edges.map((e) => ({ from: e.from, to: e.to, points: e.points })) };
  }
  if (engine === "dagre") {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 64, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of graph.nodes) g.setNode(n.id, { width: box(n).width, height: box(n).height });
    for (const n of graph.nodes) for (const a of n.after) g.setEdge(a, n.id);
    dagre.layout(g);
    const nodes = graph.nodes.map((n) => { const v = g.node(n.id);
      return { id: n.id, x: v.x - v.width / 2, y: v.y - v.height / 2, width: v.width, height: v.height }; });
    const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points.map((p) => [p.x, p.y]) }));
    return { nodes, edges };
  }
  const elk = new ELK();
  const laid = await elk.layout({ id: "root",
    layoutOptions: { "elk.algorithm": "layered", "elk.direction": "RIGHT",
      "elk.spacing.nodeNode": "16", "elk.layered.spacing.nodeNodeBetweenLayers": "64" },
    children: graph.nodes.map((n) => ({ id: n.id, width: box(n).width, height: box(n).height })),
    edges: graph.nodes.flatMap((n) => n.after.map((a, i) => ({ id: n.id + "\u0000" + i, sources: [a], targets: [n.id] }))) });
  const nodes = laid.children.map((v) => ({ id: v.id, x: v.x, y: v.y, width: v.width, height: v.height }));
  const edges = laid.edges.map((e) => { const s = e.sections[0];
    return { from: e.sources[0], to: e.targets[0],
      points: [s.startPoint, ...(s.bendPoints || []), s.endPoint].map((p) => [p.x, p.y]) }; });
  return { nodes, edges };
}
function measure(laid) {
  const at = new Map(laid.nodes.map((n) => [n.id, n]));
  let backward = 0;
  for (const e of laid.edges) if (at.get(e.to).x < at.get(e.from).x + at.get(e.from).width) backward += 1;
  // crossings: segment pairs of edges sharing no task, bucketed by 64 px columns of x
  const segments = [];
  laid.edges.forEach((e, k) => { for (let i = 1; i < e.points.length; i += 1)
    segments.push({ k, from: e.from, to: e.to, a: e.points[i - 1], b: e.points[i] }); });
  const W = 64, buckets = new Map();
  for (const s of segments) {
    s.lo = Math.floor(Math.min(s.a[0], s.b[0]) / W); s.hi = Math.floor(Math.max(s.a[0], s.b[0]) / W);
    for (let c = s.lo; c <= s.hi; c += 1) (buckets.get(c) || buckets.set(c, []).get(c)).push(s);
  }
  const cross = (p, q, r, s) => { const d = (q[0] - p[0]) * (s[1] - r[1]) - (q[1] - p[1]) * (s[0] - r[0]);
    if (Math.abs(d) < 1e-9) return false;
    const t = ((r[0] - p[0]) * (s[1] - r[1]) - (r[1] - p[1]) * (s[0] - r[0])) / d;
    const u = ((r[0] - p[0]) * (q[1] - p[1]) - (r[1] - p[1]) * (q[0] - p[0])) / d;
    return t > 1e-6 && t < 1 - 1e-6 && u > 1e-6 && u < 1 - 1e-6; };
  let crossings = 0;
  for (const [c, list] of buckets) for (let i = 0; i < list.length; i += 1) for (let j = i + 1; j < list.length; j += 1) {
    const s = list[i], t = list[j];
    if (s.k === t.k || Math.max(s.lo, t.lo) !== c) continue;
    if (s.from === t.from || s.from === t.to || s.to === t.from || s.to === t.to) continue;
    if (cross(s.a, s.b, t.a, t.b)) crossings += 1;
  }
  return { backward, crossings, edges: laid.edges.length };
}
(async () => {
  const times = [];
  let laid;
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    laid = await lay();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  done({ ms: times[Math.floor(times.length / 2)], ...measure(laid) });
})().catch((error) => done({ error: String(error) }));
