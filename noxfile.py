"""Development sessions: tests, integration (also on RabbitMQ and NATS: integration-rabbitmq,
integration-nats), docs, faults (faults-rabbitmq, faults-nats), lint, typecheck, demo, bench,
peers.

``python3 dev.py test`` and ``python3 dev.py demo`` (see README) run these
through a bootstrap virtualenv; with nox installed, ``nox -s <session>``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import nox

# uv: every session installs the packages in seconds, where pip took ~50 s a session (dev.py
# installs nox with uv beside it)
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "integration", "docs", "faults", "lint", "typecheck"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# The published packages, in dependency order; one pytest run per package.
PACKAGES = [
    "cascade-interfaces",
    "cascade-connector-kit",
    "cascade-client",
    "cascade-connector-mqtt",
    "cascade-runtime",
    "cascade-history",
    "cascade-dashboard",
    "cascade-notify",
    "cascade-cli",
]
# The test tools of this repository (brokers, fixtures): installed, editable, with the packages
# wherever tests, benchmarks or mypy run; never built nor shipped by the `package` session.
TESTKIT = "cascade-testkit"
PYTEST = ["pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
# Extras installed with a package in every session (its tests need them).
EXTRAS = {
    "cascade-client": "[metrics]",
    "cascade-runtime": "[otel,dask,yaml,template,http,s3,sql]",
    "cascade-history": "[postgresql]",
    "cascade-dashboard": "[history]",
    "cascade-notify": "[metrics]",
    "cascade-cli": "[dashboard,history,metrics,notify]",
}


def install_packages(session: nox.Session, *groups: str, testkit: bool = True) -> None:
    """Install every package and, unless told not to, the testkit (editable, in one resolver
    run), and the named dependency groups."""
    requirements = [
        req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)
    ]
    packages = [*PACKAGES, TESTKIT] if testkit else PACKAGES
    session.install(*editables(packages), *requirements)
    # bytecode kept outside the source trees, even where $PYTHONDONTWRITEBYTECODE is set: else
    # every interpreter a session starts (a test's `cascade` command, a worker) compiles its
    # hundreds of modules again, some 2 to 7 s each (`cascade complete`: 8 s, 1 s cached)
    session.env["PYTHONPYCACHEPREFIX"] = str(ROOT / ".nox" / "pycache")
    session.env["PYTHONDONTWRITEBYTECODE"] = ""


def editables(packages: list[str]) -> list[str]:
    """pip's arguments installing ``packages`` editable, each with its EXTRAS."""
    return [
        arg
        for package in packages
        for arg in ("-e", f"packages/{package}{EXTRAS.get(package, '')}")
    ]


def package_tests(package: str, kind: str) -> list[str]:
    """The test paths of one kind ("unit" or "integration") in a package, if it has any."""
    tests = ROOT / "packages" / package / "tests"
    integration = tests / "integration"
    if kind == "integration":
        return [str(integration)] if integration.is_dir() else []
    return [str(tests), f"--ignore={integration}"] if tests.is_dir() else []


def run_package_tests(session: nox.Session, kind: str, then: dict[str, Path] | None = None) -> None:
    """Install everything, then one pytest run per package (and the testkit) over its tests of
    ``kind``, then one over each suite of ``then`` (what to log → its folder). Every run goes
    ahead whichever fail before it, so that one session shows every failure."""
    install_packages(session, "test", *(["oidc"] if kind == "integration" else []))
    runs = [
        (f"{kind} tests of {package}", package_tests(package, kind))
        for package in [*PACKAGES, TESTKIT]
    ]
    runs += [(what, [str(path)]) for what, path in (then or {}).items()]
    failed = []
    for what, args in runs:
        if args:
            session.log(what)
            try:
                session.run(*PYTEST, *args, *session.posargs)
            except nox.command.CommandFailed:
                failed.append(what)
    if failed:
        session.error(f"failed: {'; '.join(failed)}")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests, one pytest run per package (mocked aiomqtt, in-memory connector), and the
    tests of the repository's own checks (tests/lint)."""
    run_package_tests(
        session, "unit", then={"the repository's own checks (tests/lint)": ROOT / "tests" / "lint"}
    )


@nox.session
def generated(session: nox.Session) -> None:
    """The generated workflows against the reference of docs/workflows.md, thousands of them
    (``CASCADE_GENERATED_EXAMPLES``, 5,000 by default here), a failing one shrunk."""
    install_packages(session, "test")
    session.env["CASCADE_GENERATED_EXAMPLES"] = os.environ.get("CASCADE_GENERATED_EXAMPLES", "5000")
    session.env["CASCADE_GENERATED_SHRINK"] = "1"
    tests = ROOT / "packages" / "cascade-runtime" / "tests" / "generated"
    session.run(*PYTEST, str(tests), "-o", "timeout=3600", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests against a real broker (a private mosquitto on a free loopback port)."""
    run_package_tests(session, "integration")


@nox.session
def docs(session: nox.Session) -> None:
    """tests/docs: every example in the READMEs and docs/ run as written, against a private
    mosquitto (each `pip install` line of the README in a fresh virtualenv)."""
    install_packages(session, "test", "oidc")
    session.run(*PYTEST, str(ROOT / "tests" / "docs"), *session.posargs)


def skip_without_rabbitmq(session: nox.Session) -> None:
    """Skip the session, saying why, where rabbitmq-server is not installed."""
    scripts = (
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
        "/usr/local/lib/rabbitmq/bin/rabbitmq-server",
    )
    if shutil.which("rabbitmq-server") is None and not any(map(os.path.exists, scripts)):
        session.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")


@nox.session(name="integration-rabbitmq")
def integration_rabbitmq(session: nox.Session) -> None:
    """The integration tests on a private RabbitMQ node (its MQTT plugin) as the shared broker
    (CASCADE_TEST_BROKER=rabbitmq): what RabbitMQ does differently is xfailed or skipped with the
    reason. Then tests/brokers: the capability table, measured on mosquitto, RabbitMQ and NATS
    (a NatsNode; skipped where nats-server is not installed), and the RabbitMQ cluster."""
    skip_without_rabbitmq(session)
    session.env["CASCADE_TEST_BROKER"] = "rabbitmq"
    run_package_tests(
        session,
        "integration",
        then={"broker capabilities of every family (tests/brokers)": ROOT / "tests" / "brokers"},
    )


def skip_without_nats(session: nox.Session) -> None:
    """Skip the session, saying why, where nats-server is not installed."""
    if shutil.which("nats-server") is None and not any(
        os.access(path, os.X_OK) for path in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server")
    ):
        session.skip("nats-server is not installed (apt-get install nats-server)")


@nox.session(name="integration-nats")
def integration_nats(session: nox.Session) -> None:
    """The integration tests on a private three-node NATS JetStream cluster speaking MQTT 3.1.1
    as the shared broker (CASCADE_TEST_BROKER=nats; one NatsNode per test that stops or hangs
    its broker): what NATS lacks (MQTT 5, QoS 2 publish, shared subscriptions) is skipped with
    the reason. tests/brokers (the capability table, NATS's column included) runs in
    `integration-rabbitmq`."""
    skip_without_nats(session)
    session.env["CASCADE_TEST_BROKER"] = "nats"
    run_package_tests(session, "integration")


@nox.session
@nox.parametrize("fast_path", ["on", "off"])
def connector(session: nox.Session, fast_path: str) -> None:
    """The connector's unit and integration tests with the sender's fast path on or off
    (CASCADE_MQTT_FAST_PATH): both ways of sending must behave alike."""
    install_packages(session, "test")
    tests = ROOT / "packages" / "cascade-connector-mqtt" / "tests"
    env = {"CASCADE_MQTT_FAST_PATH": fast_path}
    session.run(*PYTEST, str(tests), *session.posargs, env=env)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault and abuse suite (tests/faults): real processes and mosquitto; prints a table."""
    install_packages(session, "test")
    session.run(*PYTEST, str(ROOT / "tests" / "faults"), *session.posargs)


@nox.session(name="faults-rabbitmq")
def faults_rabbitmq(session: nox.Session) -> None:
    """The fault suite on private RabbitMQ nodes, one per scenario (CASCADE_TEST_BROKER=rabbitmq);
    the scenarios that configure a mosquitto of their own run in `faults` only."""
    skip_without_rabbitmq(session)
    install_packages(session, "test")
    session.env["CASCADE_TEST_BROKER"] = "rabbitmq"
    session.run(*PYTEST, str(ROOT / "tests" / "faults"), *session.posargs)


@nox.session(name="faults-nats")
def faults_nats(session: nox.Session) -> None:
    """The fault suite on NATS (CASCADE_TEST_BROKER=nats): a private NatsNode per scenario that
    stops, kills or hangs its broker; the scenarios that configure a mosquitto of their own run
    in `faults` only, and what NATS lacks is skipped with the reason."""
    skip_without_nats(session)
    install_packages(session, "test")
    session.env["CASCADE_TEST_BROKER"] = "nats"
    session.run(*PYTEST, str(ROOT / "tests" / "faults"), *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The dashboard in a real headless Chromium (tests/browser): needs the system's chromium and
    chromium-driver. CASCADE_DASHBOARD_SCREENSHOT=docs/dashboard.png also saves the README's image.
    """
    install_packages(session, "browser")
    session.run(*PYTEST, str(ROOT / "tests" / "browser"), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check over the whole tree; then the tests' private imports
    (tests/lint/private_imports.py: only the module a test file is about, fewer than 30)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("python", str(ROOT / "tests" / "lint" / "private_imports.py"), str(ROOT))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's (and the testkit's) sources, tests and benchmarks,
    tests/faults, docs, browser, brokers and lint, and the peers' driver (benchmarks/peers)."""
    install_packages(session, "typecheck")
    mypy_path = ":".join(str(ROOT / "packages" / p / "src") for p in [*PACKAGES, TESTKIT])
    for package in [*PACKAGES, TESTKIT]:
        root = ROOT / "packages" / package
        parts = (root / "src", root / "tests", root / "benchmarks")
        targets = [str(path) for path in parts if path.is_dir()]
        session.run("mypy", *targets, env={"MYPYPATH": mypy_path})
    for suite in ("faults", "docs", "browser", "brokers", "lint"):
        session.run("mypy", str(ROOT / "tests" / suite), env={"MYPYPATH": mypy_path})
    # the peers' driver and what runs in Cascade's interpreter (the other peers' modules import
    # Prefect, Dask and the existing engine, which run in virtualenvs of their own)
    peers = ROOT / "benchmarks" / "peers"
    modules = [
        str(peers / name) for name in ("compare.py", "child.py", "work.py", "peer_cascade.py")
    ]
    session.run("mypy", *modules, env={"MYPYPATH": f"{mypy_path}:{peers}"})


def install_unless_unchanged(session: nox.Session) -> None:
    """Install the packages, unless this environment has them from the same metadata already.

    The installs are editable, so only the packages' metadata (dependencies, extras, entry
    points) or this file's choice of extras can make an install stale: their digest is kept
    in the environment, and a second run with the same digest skips the install.
    """
    digest = hashlib.sha256(repr(EXTRAS).encode())
    for package in PACKAGES:
        digest.update((ROOT / "packages" / package / "pyproject.toml").read_bytes())
    stamp = Path(session.virtualenv.location) / ".cascade-installed"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == digest.hexdigest():
        session.log("packages unchanged since this environment installed them: not reinstalling")
        return
    session.log("installing the packages and their dependencies")
    started = time.monotonic()
    session.install(*editables(PACKAGES))
    session.log(f"installed in {time.monotonic() - started:.0f} s")
    stamp.write_text(digest.hexdigest(), encoding="utf-8")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a live demo of a workflow (on an embedded broker unless a host is given)."""
    install_unless_unchanged(session)
    # the commands the demo prints must run as printed from the clone, where this environment's
    # `cascade` is not on the PATH: `python3 dev.py cascade` runs it
    session.run(
        "cascade", "demo", *session.posargs, env={"CASCADE_COMMAND": "python3 dev.py cascade"}
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: every packages/*/benchmarks/bench_*.py, each printing its table."""
    install_packages(session, "test")
    for package in PACKAGES:
        for script in sorted((ROOT / "packages" / package / "benchmarks").glob("bench_*.py")):
            session.log(f"benchmark {script.relative_to(ROOT)}")
            session.run("python", str(script), *session.posargs)


@nox.session
def fleet(session: nox.Session) -> None:
    """A simulated fleet (10,000 engines at 20,000 events/s unless told: `-- --engines 1000
    --rate 10000`) beside every reader at once (watch, status, dashboard and its /metrics,
    record) on a private mosquitto, in each of issue 51's cases and issue 66's fleet
    (`-- --cases start,late`; all unless told); prints a table of what each costs and keeps
    up with a case, and one of every case's figures beside the targets; with `-- --baseline
    main`, each case with main's dashboard first, the aims of both side by side
    (packages/cascade-cli/benchmarks/bench_fleet.py; `-- --help` for its options)."""
    install_packages(session, "test")
    script = ROOT / "packages" / "cascade-cli" / "benchmarks" / "bench_fleet.py"
    session.run("python", str(script), *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The readers under a steady load (issue 91): an engine's back-to-back runs of 1,000
    coroutine tasks beside `cascade record`, `cascade dashboard` and `cascade watch` on a
    private mosquitto, each reader's memory and the history's missing events printed over time
    (3 minutes unless told: `-- --minutes 12`; `-- --db URL` for PostgreSQL;
    packages/cascade-cli/benchmarks/bench_soak.py, `-- --help` for its options)."""
    install_packages(session, "test")
    script = ROOT / "packages" / "cascade-cli" / "benchmarks" / "bench_soak.py"
    session.run("python", str(script), *session.posargs)


# The peers' requirements, each installed in a virtualenv of its own (their pins may clash with
# ours, and the existing engine's `cascade/__init__.py` would shadow our namespace).
PEER_REQUIREMENTS = {"prefect": ["prefect>=3,<4"], "dask": ["dask>=2024.1,<2027"]}
# The existing engine's packages that `cs.run` and its MQTT connector need, editable as its
# workspace has them; with its root project, which installs cascade-sdk's `cascade/__init__.py`
# (the API) where it comes first (each package has one, and the others only extend the path).
EXISTING_PACKAGES = ("spec", "common", "graph", "engine", "application", "sdk", "library")


def existing_requirements(session: nox.Session, checkout: Path) -> list[str]:
    """What installs the existing Cascade engine from a checkout of github.com/doucx/Cascade."""
    if not (checkout / "packages" / "cascade-engine" / "pyproject.toml").is_file():
        session.error(f"{checkout} is not a checkout of github.com/doucx/Cascade")
    packages = [*EXISTING_PACKAGES, "connector-mqtt"]
    return [str(checkout), *(f"--editable={checkout}/packages/cascade-{p}" for p in packages)]


def peer_python(session: nox.Session, name: str, requirements: list[str]) -> str:
    """The interpreter of ``.nox/peers-NAME``, a virtualenv uv makes with ``requirements``
    (on this session's Python), reused while they are the same."""
    location = ROOT / ".nox" / f"peers-{name}"
    python = location / ("Scripts" if os.name == "nt" else "bin") / "python"
    stamp = location / ".peers-installed"
    wanted = "\n".join(requirements)
    if python.exists() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        session.log(f"{name}: reusing {location}")
        return str(python)
    try:
        from uv import find_uv_bin  # beside nox in dev.py's .venv

        uv = find_uv_bin()
    except ImportError:
        uv = shutil.which("uv") or session.error("uv is not installed (pip install uv)")
    this_python = str(Path(session.bin) / "python")
    session.run(uv, "venv", "--clear", "--python", this_python, str(location), external=True)
    session.run(uv, "pip", "install", "--python", str(python), *requirements, external=True)
    stamp.write_text(wanted, encoding="utf-8")
    return str(python)


@nox.session
def peers(session: nox.Session) -> None:
    """Cascade beside its peers (benchmarks/peers/compare.py): the existing Cascade engine,
    Prefect 3 and Dask, each installed in a virtualenv of its own under .nox/ (downloaded
    once, then reused); one table. The existing engine comes from a checkout:
    `-- --existing PATH` or CASCADE_EXISTING_ENGINE=PATH (without one its rows say so);
    `-- --write docs/performance.md` updates that page; `-- --help` for the rest."""
    install_packages(session)
    options = argparse.ArgumentParser(add_help=False)  # the rest, --help too, are the driver's
    options.add_argument("--existing", default=os.environ.get("CASCADE_EXISTING_ENGINE"))
    known, args = options.parse_known_args(session.posargs)
    requirements = dict(PEER_REQUIREMENTS)
    if known.existing:
        requirements["existing"] = existing_requirements(session, Path(known.existing).resolve())
    interpreters = [
        f"--interpreter={name}={peer_python(session, name, wanted)}"
        for name, wanted in requirements.items()
    ]
    script = ROOT / "benchmarks" / "peers" / "compare.py"
    session.run("python", str(script), *interpreters, *args)


# Run in the fresh environment: importing the runtime must load no MQTT client.
NO_MQTT_IMPORTED = """
import sys
import cascade.runtime
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("aiomqtt", "paho"))
assert not loaded, f"import cascade.runtime loaded {loaded}"
print("cascade.runtime imported; no MQTT module loaded")
"""
# Run there too: the connectors' test doubles (the MQTT connector's, and the in-memory broker
# users' own tests run on) need nothing their packages do not declare (the fresh environment
# has no pytest) nor an MQTT client, and the unpublished testkit is not in it.
TESTING_STANDS_ALONE = """
import importlib.util
import sys
assert importlib.util.find_spec("pytest") is None, "the fresh environment has pytest"
assert importlib.util.find_spec("cascade.testkit") is None, "cascade.testkit was shipped"
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink, Sent
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
unwanted = ("pytest", "_pytest", "aiomqtt", "paho")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in unwanted)
assert not loaded, f"the test doubles loaded {loaded}"
print("cascade.connectors.mqtt.testing and cascade.connector_kit.testing imported: no pytest, "
      "aiomqtt or paho; no cascade.testkit")
"""


# The README's install lines from a clone, one file of install/ a use: what each must let a
# fresh virtualenv do (run from outside the clone), the modules it must not bring, and whether
# it has the `cascade` command. The package session tries each: "engine" first, then
# "everything" on top of it (the lines add up); "command" in a virtualenv of its own.
INSTALL_USES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    # the engine needs no client: its Decide is the protocol's
    "engine.txt": ("import cascade.runtime, cascade.connectors.mqtt",
                   ("cascade.cli", "cascade.control"), False),
    "command.txt": ("import cascade.cli, cascade.runtime, cascade.control", ("starlette",), True),
    "everything.txt": (
        "import cascade.history, cascade.dashboard, cascade.notify, cascade.metrics, psycopg, "
        "prometheus_client, opentelemetry, distributed, yaml, jinja2; "
        "from cascade.runtime import DaskExecutor",
        (),
        True,
    ),
}  # fmt: skip


def try_install_lines(session: nox.Session, outside: Path) -> None:
    """Each install/ file as the README says it (``pip install -r install/FILE`` from the
    clone's root) in a fresh virtualenv, and what its use must then do, from outside the clone."""
    files = sorted(path.name for path in (ROOT / "install").glob("*.txt"))
    if files != sorted(INSTALL_USES):
        session.error(f"install/ has {files}; INSTALL_USES checks {sorted(INSTALL_USES)}")
    for venv_name, uses in (("engine-then-everything", ("engine.txt", "everything.txt")),
                            ("command", ("command.txt",))):  # fmt: skip
        venv = outside / venv_name
        session.run("python", "-m", "venv", str(venv))
        bin_dir = venv / ("Scripts" if (venv / "Scripts").is_dir() else "bin")
        for use in uses:
            session.log(f"pip install -r install/{use}, in {venv_name}")
            session.run(str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "-r",
                        f"install/{use}", external=True)  # fmt: skip
            session.run(str(bin_dir / "python"), "-m", "pip", "check", external=True)
            code, absent, command = INSTALL_USES[use]
            with session.chdir(outside):
                env = {"PYTHONPATH": ""}
                session.run(str(bin_dir / "python"), "-c", code, external=True, env=env)
                for module in absent:
                    probe = f"import importlib.util as u; assert u.find_spec({module!r}) is None"
                    session.run(str(bin_dir / "python"), "-c", probe, external=True, env=env)
                if command:
                    session.run(str(bin_dir / "cascade"), "--version", external=True, env=env)


@nox.session
def package(session: nox.Session) -> None:
    """Build every published package's sdist and wheel (not the testkit's), check them with
    twine, install the wheels into a fresh virtualenv outside the source tree, and run the
    `cascade` command and the import checks above there; then the README's install lines from
    the clone (install/*.txt), each in a fresh virtualenv (try_install_lines)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "package"))
    outside = Path(tempfile.mkdtemp(prefix="cascade-package-"))
    try:
        dist = outside / "dist"
        for package in PACKAGES:
            session.run(
                "python",
                "-m",
                "build",
                "--installer",
                "uv",
                "--outdir",
                str(dist),
                f"packages/{package}",
            )
        built = sorted(dist.iterdir())
        session.run("twine", "check", "--strict", *map(str, built))
        wheels = [str(path) for path in built if path.suffix == ".whl"]
        if len(wheels) != len(PACKAGES):
            session.error(f"expected {len(PACKAGES)} wheels, built {wheels}")
        venv = outside / "venv"
        session.run("python", "-m", "venv", str(venv))
        bin_dir = venv / ("Scripts" if (venv / "Scripts").is_dir() else "bin")
        session.run(str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *wheels,
                    external=True)  # fmt: skip
        # from outside the tree, with nothing of it on the path: only the wheels are used
        env = {"PYTHONPATH": ""}
        with session.chdir(outside):
            cascade = str(bin_dir / "cascade")
            session.run(cascade, "--version", external=True, env=env)
            session.run(cascade, "demo", "--tasks", "8", "--duration", "2", external=True,
                        env=env)  # fmt: skip
            python = str(bin_dir / "python")
            session.run(python, "-c", NO_MQTT_IMPORTED, external=True, env=env)
            session.run(python, "-c", TESTING_STANDS_ALONE, external=True, env=env)
        try_install_lines(session, outside)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def lowest_pins(package: str, names: tuple[str, ...]) -> list[str]:
    """``name==lower bound`` for each of ``names`` among ``package``'s dependencies."""
    project = nox.project.load_toml(ROOT / "packages" / package / "pyproject.toml")
    pins = []
    for requirement in project["project"]["dependencies"]:
        name, _, rest = requirement.partition(">=")
        if name.strip() in names:
            pins.append(f"{name.strip()}=={rest.split(',')[0].strip()}")
    return pins


@nox.session
@nox.parametrize("versions", ["lowest", "highest"])
def compat(session: nox.Session, versions: str) -> None:
    """The connector's tests at the lowest and the highest aiomqtt and paho-mqtt its pins allow,
    and the notifier's at the lowest and highest httpx2 and httpcore2 (its webhooks reach into
    httpx2's transport for its connection pool: cascade/notify/_destinations.py)."""
    install_packages(session, "test")
    if versions == "lowest":
        session.install(
            *lowest_pins("cascade-connector-mqtt", ("aiomqtt", "paho-mqtt")),
            *lowest_pins("cascade-notify", ("httpx2", "httpcore2")),
        )
    else:
        # every dependency of the connector and the notifier to the highest its pins allow
        session.install(
            "--upgrade", "-e", "packages/cascade-connector-mqtt", "-e", "packages/cascade-notify"
        )
    session.run("uv", "pip", "show", "aiomqtt", "paho-mqtt", "httpx2", "httpcore2", silent=False)
    tests = ROOT / "packages" / "cascade-connector-mqtt" / "tests"
    session.run(*PYTEST, str(tests), *session.posargs)
    session.run(*PYTEST, str(ROOT / "packages" / "cascade-notify" / "tests"), *session.posargs)
