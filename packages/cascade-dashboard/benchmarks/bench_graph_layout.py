"""The run page's graph laid out by each candidate, in the real headless Chromium: the
dashboard's own layered layout (static/layout.js, as it wrapped at 1,280 px and unwrapped),
@dagrejs/dagre and ELK.js (layered), each fetched from the npm registry by ``npm pack``.

For each graph (a seeded random DAG of 10, 200 and 2,000 tasks in layers, each task after one
to three tasks of earlier layers, as the graph tests draw; and the 14-task ETL of issue 91)
a row per engine: its edge crossings (points where two edges that share no task cross, every
edge taken as the polyline through its points), its backward edges (those whose target's box
is not right of its source's), and its layout time in ms (the median of 3 after one run
to warm up left out; of 1 at 2,000). Every engine is given the same boxes (200 x 40, a map's 240 x 76) and
left to right.

    python bench_graph_layout.py [--dagre 1] [--elk 0]   (needs npm, chromium, chromedriver)
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[1] / "src" / "cascade" / "dashboard" / "static"
SIZES = (10, 200, 2000)

# the 14-task ETL of issue 91, as its engine sends its graph
ETL14 = {
    "nodes": [
        {"id": "extract", "after": []},
        {"id": "paginate", "after": ["extract"]},
        {"id": "sql", "after": ["extract"]},
        {"id": "http.get", "after": ["paginate"]},
        {"id": "check", "after": ["sql", "http.get"], "conditions": ["sql"]},
        {"id": "cache", "after": ["check"]},
        {"id": "transform", "after": ["cache"], "map": True},
        {"id": "route", "after": ["transform"]},
        {"id": "load_a", "after": ["route"], "conditions": ["route"]},
        {"id": "load_b", "after": ["route"], "conditions": ["route"]},
        {"id": "report", "after": ["load_a", "load_b"]},
        {"id": "audit", "after": ["load_a", "load_b"]},
        {"id": "approve", "after": ["report", "audit"]},
        {"id": "publish", "after": ["approve"]},
    ]
}

PAGE = """<!doctype html><meta charset="utf-8">
<script src="dagre.min.js"></script><script src="elk.bundled.js"></script>
<script type="module">
import { layOut, NODE, MAPPED } from "./layout.js";
window.layOut = layOut; window.NODE = NODE; window.MAPPED = MAPPED; window.ready = true;
</script>"""

BENCH = r"""
const [graph, engine, room, runs] = arguments;
window.benchResult = null;
const done = (found) => { window.benchResult = found; };
const box = (n) => (n.map ? window.MAPPED : window.NODE);
async function lay() {
  if (engine === "layout.js") {
    const laid = window.layOut(graph, room ?? Infinity);
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
"""


def random_graph(size: int) -> dict[str, Any]:
    """``size`` tasks in layers (5 of 2, 10 of 20, 20 of 100), each after one to three tasks
    of any earlier layer, from a seeded generator (the graph tests' BIG, scaled)."""
    per_layer = {10: 2, 200: 20, 2000: 100}[size]
    seed = 7

    def random() -> float:
        nonlocal seed
        seed = (seed * 1664525 + 1013904223) % 4294967296
        return seed / 4294967296

    nodes = []
    for i in range(size):
        layer = i // per_layer
        count = 1 + int(random() * 3) if layer else 0
        after = sorted({f"t{int(random() * layer * per_layer)}" for _ in range(count)})
        nodes.append({"id": f"t{i}", "after": after})
    return {"nodes": nodes}


def fetched(package: str, into: Path) -> Path:
    """``package`` (name@range) unpacked from the npm registry into ``into``; its folder."""
    answer = subprocess.run(
        ["npm", "pack", package, "--silent"], cwd=into, check=True, capture_output=True, text=True
    )
    tgz = into / answer.stdout.strip().splitlines()[-1]
    folder = into / tgz.name.removesuffix(".tgz")
    with tarfile.open(tgz) as archive:
        archive.extractall(folder, filter="data")
    return folder / "package"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dagre", default="1", help="@dagrejs/dagre's major")
    parser.add_argument("--elk", default="0", help="elkjs's major")
    options = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (shutil.which("npm") and chromium and driver_path):
        print("skipped: needs npm, chromium and chromedriver")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        dagre = fetched(f"@dagrejs/dagre@{options.dagre}", root)
        elk = fetched(f"elkjs@{options.elk}", root)
        served = root / "served"
        served.mkdir()
        shutil.copy(STATIC / "layout.js", served)
        shutil.copy(dagre / "dist" / "dagre.min.js", served)
        shutil.copy(elk / "lib" / "elk.bundled.js", served)
        (served / "index.html").write_text(PAGE)
        versions = {
            "dagre": json.loads((dagre / "package.json").read_text())["version"],
            "ELK.js": json.loads((elk / "package.json").read_text())["version"],
        }
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        chrome = webdriver.ChromeOptions()
        chrome.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            chrome.add_argument(argument)
        driver = webdriver.Chrome(options=chrome, service=Service(executable_path=driver_path))
        driver.set_script_timeout(600)
        try:
            driver.get(f"http://127.0.0.1:{server.server_port}/index.html")
            while not driver.execute_script("return window.ready === true"):
                time.sleep(0.1)
            print(f"Chromium {driver.capabilities.get('browserVersion')}; dagre {versions['dagre']},"
                  f" ELK.js {versions['ELK.js']}")  # fmt: skip
            print(f"{'graph':<14}{'engine':<30}{'edges':>7}{'crossings':>11}{'backward':>10}{'ms':>9}")
            graphs = [("ETL, 14 tasks", ETL14)] + [(f"{n:,} tasks", random_graph(n)) for n in SIZES]
            engines = [
                ("layout.js, wrapped at 1,280", "layout.js", 1280 - 2 * 19 - 20),
                ("layout.js, unwrapped", "layout.js", None),
                (f"dagre {versions['dagre']}", "dagre", None),
                (f"ELK.js {versions['ELK.js']} layered", "elk", None),
            ]
            for name, graph in graphs:
                for label, engine, room in engines:
                    runs = 1 if len(graph["nodes"]) > 1000 else 3  # a warm-up each, then these
                    driver.execute_script(BENCH, graph, engine, room, 1)
                    while driver.execute_script("return window.benchResult") is None:
                        time.sleep(0.5)
                    driver.execute_script(BENCH, graph, engine, room, runs)
                    while (found := driver.execute_script("return window.benchResult")) is None:
                        time.sleep(0.5)
                    if "error" in found:
                        print(f"{name:<14}{label:<30} failed: {found['error']}")
                        continue
                    print(
                        f"{name:<14}{label:<30}{found['edges']:>7,}{found['crossings']:>11,}"
                        f"{found['backward']:>10,}{found['ms']:>9.1f}",
                        flush=True,
                    )
        finally:
            driver.quit()
            server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
