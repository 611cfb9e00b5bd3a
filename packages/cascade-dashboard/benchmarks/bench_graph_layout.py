"""The run page's graph laid out by each candidate, in the real headless Chromium: the
dashboard's own layered layout (static/layout.js, as it wrapped at 1,280 px and unwrapped),
@dagrejs/dagre and ELK.js (layered), each fetched from the npm registry by ``npm pack``.

``--baseline REV``: the layout.js of that git revision too (by default main's, which wrapped its
layers into bands at the page's width: given the room of a 1,280 px page). A layout that keeps
the page busy for more than ``--cap`` seconds (at most the WebDriver client's 120) is said as
"> CAP s" and its page opened anew.

For each graph (a seeded random DAG of 10, 200 and 2,000 tasks in layers, each task after one
to three tasks of earlier layers, as the graph tests draw; and the 14-task ETL of issue 91)
a row per engine: its edge crossings (points where two edges that share no task cross, every
edge taken as the polyline through its points), its backward edges (those whose target's box
is not right of its source's), and its layout time in ms (the median of 3 after one run
to warm up left out; of 1 at 2,000). Every engine is given layout.js's boxes, 16 px between them and
64 between layers, left to right.

    python bench_graph_layout.py [--dagre 1] [--elk 0] [--baseline main] [--sizes 10,200,2000]
        [--cap 110]   (needs git, npm, chromium, chromedriver)
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[1] / "src" / "cascade" / "dashboard" / "static"
ROOT = Path(__file__).resolve().parents[3]
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
import { layOut as layOutBefore } from "./layout-baseline.js";
Object.assign(window, { layOut, layOutBefore, NODE, MAPPED, ready: true });
</script>"""

BENCH = (Path(__file__).parent / "bench_graph_layout.js").read_text()


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
    parser.add_argument("--baseline", default="main", help="a git revision's layout.js too")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="the random graphs' sizes"
    )
    parser.add_argument(
        "--cap", type=float, default=110.0, help="s a layout may keep its page busy"
    )
    options = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (shutil.which("npm") and chromium and driver_path):
        print("skipped: needs npm, chromium and chromedriver")
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        dagre = fetched(f"@dagrejs/dagre@{options.dagre}", root)
        elk = fetched(f"elkjs@{options.elk}", root)
        served = root / "served"
        served.mkdir()
        shutil.copy(STATIC / "layout.js", served)
        relative = (STATIC / "layout.js").relative_to(ROOT)
        baseline = subprocess.run(["git", "show", f"{options.baseline}:{relative}"], cwd=ROOT,
                                  check=True, capture_output=True, text=True).stdout  # fmt: skip
        (served / "layout-baseline.js").write_text(baseline)
        shutil.copy(dagre / "dist" / "dagre.min.js", served)
        shutil.copy(elk / "lib" / "elk.bundled.js", served)
        (served / "index.html").write_text(PAGE)
        versions = {
            "dagre": json.loads((dagre / "package.json").read_text())["version"],
            "ELK.js": json.loads((elk / "package.json").read_text())["version"],
        }
        handler = functools.partial(Quiet, directory=str(served))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        page = Page(chromium, driver_path, f"http://127.0.0.1:{server.server_port}/index.html",
                    options.cap)  # fmt: skip
        try:
            print(f"Chromium {page.driver.capabilities.get('browserVersion')}; dagre"
                  f" {versions['dagre']}, ELK.js {versions['ELK.js']}")  # fmt: skip
            print(
                f"{'graph':<14}{'engine':<34}{'edges':>7}{'crossings':>11}{'backward':>10}{'ms':>10}"
            )
            sizes = [int(n) for n in options.sizes.split(",") if n]
            graphs = [("ETL, 14 tasks", ETL14)] + [(f"{n:,} tasks", random_graph(n)) for n in sizes]
            engines = [
                (f"layout.js of {options.baseline}, 1,280 px", "baseline", 1280 - 2 * 19 - 20),
                ("layout.js", "layout.js", None),
                (f"dagre {versions['dagre']}", "dagre", None),
                (f"ELK.js {versions['ELK.js']} layered", "elk", None),
            ]
            for name, graph in graphs:
                for label, engine, room in engines:
                    found = page.measure(graph, engine, room)
                    if found is None:
                        capped = f"> {options.cap:.0f} s"
                        print(f"{name:<14}{label:<34}{'':>28}{capped:>10}", flush=True)
                    elif "error" in found:
                        print(f"{name:<14}{label:<34} failed: {found['error']}", flush=True)
                    else:
                        said = (
                            f"{found['edges']:>7,}{found['crossings']:>11,}{found['backward']:>10,}"
                        )
                        print(f"{name:<14}{label:<34}{said}{found['ms']:>10.1f}", flush=True)
        finally:
            page.close()
            server.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    """The page's files, served without a line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Page:
    """The benchmark's page in a headless Chromium, opened anew where a layout keeps it busy
    past ``cap`` seconds (a WebDriver command waits on a busy page)."""

    def __init__(self, chromium: str, driver_path: str, url: str, cap: float) -> None:
        self.chromium, self.driver_path, self.url, self.cap = chromium, driver_path, url, cap
        self.driver = self._open()

    def _open(self) -> Any:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chrome = webdriver.ChromeOptions()
        chrome.binary_location = self.chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            chrome.add_argument(argument)
        service = Service(executable_path=self.driver_path)
        driver = webdriver.Chrome(options=chrome, service=service)
        driver.get(self.url)
        while not driver.execute_script("return window.ready === true"):
            time.sleep(0.1)
        return driver

    def measure(self, graph: dict[str, Any], engine: str, room: int | None) -> Any:
        """What BENCH found (None: it kept the page busy past the cap)."""
        runs = 1 if len(graph["nodes"]) > 1000 else 3
        warm = len(graph["nodes"]) <= 1000  # a run to warm up first, but of a small graph
        began = time.monotonic()
        try:
            for times in (1, runs) if warm else (runs,):
                self.driver.execute_script(BENCH, graph, engine, room, times)
                while (found := self.driver.execute_script("return window.benchResult")) is None:
                    if time.monotonic() - began > self.cap:
                        raise TimeoutError
                    time.sleep(0.5)
            return found
        except Exception:  # the client's read timed out on the busy page, or the cap passed
            self.close()
            self.driver = self._open()
            return None

    def close(self) -> None:
        try:
            self.driver.quit()
        except Exception:
            service = self.driver.service
            if service.process is not None:
                service.process.kill()


if __name__ == "__main__":
    main()
