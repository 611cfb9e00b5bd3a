"""Private NATS servers speaking MQTT: one node, or a JetStream cluster of three on loopback."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from ._managed import ChildProcess, ManagedProcess, executable, in_parallel
from ._mqtt_probe import mqtt_accepts
from ._ports import free_port

__all__ = ["NO_NATS", "NatsCluster", "NatsNode", "nats_server_path"]

NO_NATS = "nats-server is not installed (apt-get install nats-server)"


def nats_server_path() -> str | None:
    """Where the ``nats-server`` executable is, or ``None`` when it is not installed."""
    return executable("nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server")


class NatsNode(ChildProcess):
    """One private ``nats-server`` with JetStream and an MQTT 3.1.1 listener on free ports.

    ``host``/``port`` is its MQTT listener; ``client_port`` the NATS one,
    ``monitor_port`` its HTTP monitoring (``/jsz``). Its files (config,
    JetStream store, log) live in a temporary directory, so a restarted node
    keeps its streams. ``routes`` (set by :class:`NatsCluster`) are the other
    nodes' cluster ports; ``replicas`` the MQTT streams' replicas.

    ``authorization`` (what ``cascade acl --nats`` writes) is included in its config, with
    ``users`` (login: password) as the ``CASCADE_PASSWORD_<login>`` variables it reads from
    ``cascade-passwords.conf``; the readiness probe then logs in as the first user.

    ``start()``/``stop()``/``kill()``/``restart()`` (same ports), ``pause()``
    (SIGSTOP) and ``resume()``; ``healthy()`` asks ``/healthz``. Also a context manager.
    """

    family = "nats"
    is_mosquitto = False
    supports_mqtt5 = False
    host = "127.0.0.1"

    def __init__(
        self,
        name: str = "n1",
        *,
        startup_timeout: float = 30.0,
        authorization: str | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        executable = nats_server_path()
        if executable is None:
            raise RuntimeError(NO_NATS)
        self._executable = executable
        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix=f"cascade-nats-{name}-")
        self.directory = Path(self._tmp.name)
        self.port = free_port()
        self.client_port = free_port()
        self.monitor_port = free_port()
        self.cluster_port = free_port()
        self.routes: list[int] = []
        self.replicas = 1
        self.log_path = self.directory / "nats.log"
        self.config_path = self.directory / "nats.conf"
        self._startup_timeout = startup_timeout
        self.stop_timeout = 10.0
        self._authorization = authorization
        self._users = dict(users or {})

    def _write_config(self) -> None:
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.client_port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            f'jetstream {{ store_dir: "{self.directory / "jetstream"}" }}',
            f"mqtt {{ listen: 127.0.0.1:{self.port}, stream_replicas: {self.replicas} }}",
        ]
        if self.routes:
            routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.routes)
            lines.append(
                f"cluster {{ name: cascade, listen: 127.0.0.1:{self.cluster_port}, "
                f"routes: [{routes}] }}"
            )
        if self._authorization is not None:
            (self.directory / "cascade-authorization.conf").write_text(self._authorization)
            (self.directory / "cascade-passwords.conf").write_text(
                "".join(
                    f"CASCADE_PASSWORD_{user}: {json.dumps(password)}\n"
                    for user, password in self._users.items()
                )
            )
            lines.append("include cascade-authorization.conf")
        self.config_path.write_text("\n".join(lines) + "\n")

    def launch(self) -> None:
        """Start the process without waiting for it to serve (a cluster starts all, then waits)."""
        if self.running:
            return
        self._write_config()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self._executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._paused = False

    def wait_ready(self, deadline: float, *, healthy: bool = True) -> None:
        """Until ``/healthz`` says its JetStream is current, then an MQTT CONNECT is accepted;
        ``RuntimeError`` past ``deadline`` (``time.monotonic()``) or if the process exits.

        Clients get a node only once it is healthy, as a NATS deployment's readiness probe
        does: nats-server 2.9 loads a node's retained messages at its first MQTT connection,
        from its own copy of the stream, and does not drop one that catching up then deletes
        from that copy; a node restarted after a clear and connected to at once served the
        cleared pause again (docs/brokers.md). ``healthy=False`` waits for MQTT alone: see
        :meth:`start`.
        """
        checks = (self.healthy, self._accepts_mqtt) if healthy else (self._accepts_mqtt,)
        for ready in checks:
            while not ready():
                if self._process is None or self._process.poll() is not None:
                    self._process = None
                    raise RuntimeError(f"nats-server {self.name} exited:\n{self.log_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats-server {self.name} was not ready in time:\n{self.log_text()[-4000:]}"
                    )
                time.sleep(0.05)  # polling another process's state

    def healthy(self) -> bool:
        """Whether ``/healthz`` answers ok: JetStream up and, in a cluster, current."""
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(json.load(answer).get("status") == "ok")
        except (OSError, ValueError):
            return False  # not listening yet, or 503 while JetStream catches up

    def _accepts_mqtt(self) -> bool:
        login = next(iter(self._users.items()), None)
        return mqtt_accepts(self.port, client_id=f"cascade-ready-{self.name}", login=login)

    def start(self, *, healthy: bool = True) -> None:
        """Start the server and wait until it is healthy and accepts MQTT connections.

        ``healthy=False`` waits only until it accepts MQTT connections: for a node restarted
        after its cluster lost quorum, where the scenario needs quorum back, not a node that
        is current. There nats-server 2.9.10 may never say healthy: ``/healthz`` repeats that
        a consumer of the MQTT streams "is not current" (one stopped while quorum was lost,
        which nats-server restarts itself from 2.9.17 on: nats-io/nats-server#4116, #4172).
        """
        self.launch()
        self.wait_ready(time.monotonic() + self._startup_timeout, healthy=healthy)

    def meta_leader(self) -> str | None:
        """The JetStream meta leader this node knows of (``/jsz``), or ``None``."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                status = json.load(answer)
        except OSError:
            return None
        leader = (status.get("meta_cluster") or {}).get("leader")
        return str(leader) if leader else None

    def close(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        self._tmp.cleanup()

    def __repr__(self) -> str:
        return f"<NatsNode {self.name} mqtt=127.0.0.1:{self.port} running={self.running}>"


class NatsCluster(ManagedProcess):
    """Three :class:`NatsNode` in one JetStream cluster, MQTT streams replicated on all three.

    ``nodes[0..2]`` (names ``a``, ``b``, ``c``) each have their own MQTT
    port; retained messages and sessions are JetStream streams with three
    replicas, so a message retained through one node is read through
    another, and two nodes keep quorum when one dies. :meth:`start` launches
    the three and returns once each accepts MQTT. ``host``/``port`` are node
    ``a``'s, so the cluster stands wherever one broker does; ``hosts`` lists
    every node as ``host:port`` (``MqttConnector(hosts=...)``, ``--host``).
    ``boot_seconds`` is how long the start took. A node stopped or killed
    rejoins on ``nodes[i].start()``.
    """

    family = "nats"
    is_mosquitto = False
    supports_mqtt5 = False
    host = "127.0.0.1"

    def __init__(self, *, size: int = 3, startup_timeout: float = 60.0) -> None:
        if nats_server_path() is None:
            raise RuntimeError(NO_NATS)
        self._startup_timeout = startup_timeout
        self.nodes = [NatsNode(name, startup_timeout=startup_timeout) for name in "abcde"[:size]]
        for node in self.nodes:
            node.routes = [other.cluster_port for other in self.nodes if other is not node]
            node.replicas = size
        self.boot_seconds: float | None = None

    @property
    def port(self) -> int:
        """Node ``a``'s MQTT port."""
        return self.nodes[0].port

    @property
    def hosts(self) -> list[str]:
        """Every node's MQTT listener as ``host:port``."""
        return [f"{node.host}:{node.port}" for node in self.nodes]

    def start(self) -> None:
        """Launch every node, then wait until each is healthy and accepts MQTT."""
        started = time.monotonic()
        for node in self.nodes:
            node.launch()
        deadline = started + self._startup_timeout
        in_parallel([functools.partial(node.wait_ready, deadline) for node in self.nodes])
        self.boot_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop every node; idempotent."""
        for node in self.nodes:
            node.stop()

    def resume(self) -> None:
        """Resume every node hung with ``pause()``."""
        for node in self.nodes:
            node.resume()

    def close(self) -> None:
        """Stop every node and delete their files."""
        for node in self.nodes:
            node.close()

    def __repr__(self) -> str:
        return f"<NatsCluster {', '.join(self.hosts)}>"
