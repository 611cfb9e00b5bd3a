"""What an unauthenticated ``GET /auth/login`` costs a team's dashboard, in its own thread's
CPU: a sign-in page served (the provider's authorization URL and the session's state), and
one refused 429 by the per-address budget.

In process: the dashboard's app behind httpx's ASGI transport (so the client's own work is
counted too: the figures are upper bounds), signing people in at a real oidc-provider-mock
in a thread of its own (the provider's metadata is fetched once; no request reaches it
after). Medians of ``--repeats`` runs of ``--requests`` logins each. To compare with another
checkout, run it with that checkout's ``src`` folders first on ``PYTHONPATH``.

Measured on the 2-core dev machine (2,000 logins, 5 runs): main at 0dba6b0 17.8 ms a login
(Authlib made an HTTP client and its TLS context for each); this branch 0.42 ms served,
0.13 ms refused (429).

Not a ``bench_*.py`` of ``nox -s bench``: it needs the ``oidc`` dependency group
(oidc-provider-mock), which that session does not install.

    python login_cost.py [--requests 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics

import httpx
from oidc_provider_mock import run_server_in_thread

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, OidcSignIn, create_app

ROLES = Roles.parse('[[grant]]\nrole = "viewer"\nscopes = ["global"]\npeople = ["a"]\n')


def thread_cpu() -> float:
    """This thread's CPU seconds (the provider's thread is not counted)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


async def per_login(issuer: str, requests: int, repeats: int, *, refused: bool) -> list[float]:
    """Milliseconds of CPU per login, one figure a run."""
    hub = DashboardHub(InMemoryConnector(InMemoryBroker()))
    sign_in = OidcSignIn(issuer, "c", "s", "http://127.0.0.1:1", "x" * 32)
    budget = getattr(sign_in, "budget", None)
    if budget is None and refused:  # a checkout without one (main before it) refuses nothing
        return []
    if budget is not None:
        budget.burst, budget.rate = (0, 1e-9) if refused else (10**9, 1.0)
    expected = 429 if refused else 302
    app = create_app(hub, DashboardSettings(token=None, roles=ROLES, sign_in=sign_in))
    transport = httpx.ASGITransport(app=app)
    figures = []
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        await http.get("/auth/login")  # the metadata, fetched once
        for _ in range(repeats):
            start = thread_cpu()
            for _ in range(requests):
                http.cookies.clear()
                answer = await http.get("/auth/login")
                assert answer.status_code == expected, answer.status_code
            figures.append((thread_cpu() - start) / requests * 1000)
    return figures


def main() -> None:
    """Print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with run_server_in_thread() as server:
        issuer = f"http://localhost:{server.server_port}"
        for refused in (False, True):
            runs = asyncio.run(per_login(issuer, args.requests // args.repeats, args.repeats,
                                         refused=refused))  # fmt: skip
            if not runs:
                continue
            what = "refused (429)" if refused else "served (302)"
            shown = ", ".join(f"{x:.3f}" for x in runs)
            print(f"GET /auth/login {what}: median {statistics.median(runs):.3f} ms CPU "
                  f"({shown})")  # fmt: skip


if __name__ == "__main__":
    main()
