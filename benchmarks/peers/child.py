"""One peer's run of one workload, in that peer's interpreter: ``python child.py PEER WORKLOAD
SIZE --repeats N [--broker HOST:PORT]``.

It imports the peer's module (``peer_<PEER>.py`` beside it), runs the workload once at a small
size to warm up (imports, Prefect's ephemeral server, thread pools: not timed), then times
``--repeats`` runs at ``SIZE``, checking each one's answer, and prints one line: ``RESULT``
and a JSON object (``version``, ``times`` in seconds; or ``error``). Standard library only
besides the peer.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
import time
import traceback
from typing import Any

import work

MARK = "RESULT "
WARM_UP_SIZE = 10


def measure(peer: str, workload: str, size: int, repeats: int, broker: Any) -> dict[str, Any]:
    module = importlib.import_module(f"peer_{peer}")
    run = module.WORKLOADS[workload]
    check(run(min(size, WARM_UP_SIZE), broker), workload, min(size, WARM_UP_SIZE))
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        answer = run(size, broker)
        times.append(time.perf_counter() - started)
        check(answer, workload, size)
    return {"version": module.version(), "times": times}


def check(answer: object, workload: str, size: int) -> None:
    if answer != work.expected(workload, size):
        wanted = work.expected(workload, size)
        raise AssertionError(f"{workload} answered {answer!r}, not {wanted!r}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer")
    parser.add_argument("workload", choices=["noop", "etl", "cpu"])
    parser.add_argument("size", type=int)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--broker", help="HOST:PORT of the MQTT broker to publish to")
    args = parser.parse_args(argv)
    broker = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        broker = (host, int(port))
    try:
        result = measure(args.peer, args.workload, args.size, args.repeats, broker)
    except Exception as error:  # reported as the row's reason, the traceback on stderr
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
