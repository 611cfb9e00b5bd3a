"""Two private RabbitMQ nodes clustered on loopback, each with its own MQTT port."""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from ._managed import ManagedProcess, in_parallel
from ._mqtt_probe import mqtt_accepts
from ._rabbitmq import NO_RABBITMQ, RabbitMQBroker, _run_as, rabbitmq_server_path

__all__ = ["RabbitMQCluster"]


class RabbitMQCluster(ManagedProcess):
    """Two :class:`RabbitMQBroker` nodes sharing an Erlang cookie, the second joined to the first.

    The closest to a real cluster one machine allows: ``nodes[0]`` and
    ``nodes[1]`` are private nodes on loopback (own node names, files and
    ports, one cookie), each with the ``rabbitmq_mqtt`` plugin on its own
    MQTT port (``node.host``, ``node.port``). :meth:`start` boots both, then
    runs ``rabbitmqctl -n NODE2 stop_app; join_cluster NODE1; start_app``
    and returns once both MQTT listeners accept a CONNECT again.

    RabbitMQ 3.10's MQTT plugin tracks client ids cluster-wide in a Raft
    cluster (``mqtt_node``) of every node, which needs a majority, here both
    nodes: with one node stopped the other still accepts MQTT connections
    but tracks no client id until it is back (``tests/brokers/test_cluster.py``).
    A node stopped with ``nodes[i].stop()`` rejoins on ``nodes[i].start()``.
    ``boot_seconds`` is how long the two nodes took to boot (in parallel),
    ``join_seconds`` how long joining took until the second node accepted
    MQTT again.

    ``close()`` stops both nodes by their pids and deletes their files; also a
    context manager. Raises :class:`RuntimeError` where ``rabbitmq-server`` is
    not installed (see :data:`NO_RABBITMQ`).
    """

    family = "rabbitmq"

    def __init__(self, *, startup_timeout: float = 90.0) -> None:
        if rabbitmq_server_path() is None:
            raise RuntimeError(NO_RABBITMQ)
        self._account = _run_as()
        self._startup_timeout = startup_timeout
        self.cookie = secrets.token_hex(20).upper()
        self.nodes: list[RabbitMQBroker] = []
        try:
            for _ in range(2):
                node = RabbitMQBroker(startup_timeout=startup_timeout)
                self.nodes.append(node)
                self._write_cookie(node)
        except BaseException:
            self.close()
            raise
        self.boot_seconds: float | None = None
        self.join_seconds: float | None = None

    def _write_cookie(self, node: RabbitMQBroker) -> None:
        """The shared cookie in the node's ``HOME``, readable by its owner only (Erlang checks)."""
        path = node.directory / ".erlang.cookie"
        path.write_text(self.cookie)
        path.chmod(0o400)
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def rabbitmqctl(self, node: RabbitMQBroker, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` as the node's user, with its cookie; its stdout.

        Raises :class:`RuntimeError` with the output if it fails or outlives ``timeout``.
        """
        return node.ctl(*args, timeout=timeout)

    def running_nodes(self, node: RabbitMQBroker | None = None) -> list[str]:
        """The cluster's running nodes as ``node`` (by default ``nodes[0]``) sees them."""
        output = self.rabbitmqctl(node or self.nodes[0], "cluster_status", "--formatter", "json")
        status: dict[str, Any] = json.loads(output[output.index("{") :])
        return sorted(status.get("running_nodes", []))

    def start(self) -> None:
        """Boot both nodes (in parallel), join the second to the first, wait for MQTT on both."""
        started = time.monotonic()
        in_parallel([node.start for node in self.nodes])
        self.boot_seconds = time.monotonic() - started

        joined = time.monotonic()
        first, second = self.nodes
        self.rabbitmqctl(second, "stop_app")
        self.rabbitmqctl(second, "join_cluster", first.node_name)
        self.rabbitmqctl(second, "start_app")
        for node in self.nodes:
            self._wait_for_mqtt(node, joined + self._startup_timeout)
        self.join_seconds = time.monotonic() - joined
        running = self.running_nodes()
        if running != sorted(node.node_name for node in self.nodes):
            raise RuntimeError(f"the cluster runs {running}, not both nodes")

    @staticmethod
    def _wait_for_mqtt(node: RabbitMQBroker, deadline: float) -> None:
        while not mqtt_accepts(node.port):
            if not node.running:
                raise RuntimeError(f"RabbitMQ node exited:\n{node.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{node.node_name} did not accept MQTT in time:\n{node.log_text()}"
                )
            time.sleep(0.1)  # polling another process's state

    def stop(self, timeout: float = 30.0) -> None:
        """Stop both nodes by their pids, the joined one first; idempotent."""
        for node in reversed(self.nodes):
            node.stop(timeout)

    def close(self) -> None:
        """Stop both nodes and delete their files."""
        for node in reversed(self.nodes):
            node.close()

    def __repr__(self) -> str:
        ports = ", ".join(f"{n.node_name} mqtt={n.port}" for n in self.nodes)
        return f"<RabbitMQCluster {ports}>"
