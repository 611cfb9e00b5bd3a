"""A private RabbitMQ node with its MQTT plugin, for tests against a second broker family."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pwd

from ._managed import ManagedProcess
from ._mqtt_probe import mqtt_accepts
from ._ports import free_port

_BOOTED = "Server startup complete"  # what RabbitMQ 3.x logs once its boot steps are done

__all__ = ["NO_RABBITMQ", "RabbitMQBroker", "rabbitmq_server_path", "rabbitmq_user"]

NO_RABBITMQ = "rabbitmq-server is not installed (apt-get install rabbitmq-server)"

# The Debian package's scripts; /usr/sbin/rabbitmq-server is a wrapper that
# redirects the node's output to /var/log/rabbitmq and switches user itself.
_SCRIPT_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin")


def rabbitmq_user(name: str, password: str, tags: str = "") -> dict[str, str]:
    """A user of a node's definitions (``RabbitMQBroker(definitions=...)``), its password
    hashed as RabbitMQ's ``rabbit_password_hashing_sha256`` hashes it (4 bytes of salt)."""
    salt = os.urandom(4)
    digest = hashlib.sha256(salt + password.encode()).digest()
    return {
        "name": name,
        "password_hash": base64.b64encode(salt + digest).decode(),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": tags,
    }


def rabbitmq_server_path() -> str | None:
    """The ``rabbitmq-server`` script that starts a node in the foreground, or ``None``."""
    for directory in _SCRIPT_DIRS:
        candidate = os.path.join(directory, "rabbitmq-server")
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("rabbitmq-server")
    if found is None:
        return None
    # Debian's /usr/sbin wrapper logs to /var/log/rabbitmq; prefer the script it wraps.
    resolved = os.path.realpath(found)
    return resolved if os.access(resolved, os.X_OK) else found


def _run_as() -> pwd.struct_passwd | None:
    """The ``rabbitmq`` account when running as root (the node then drops to it), else None."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None


class RabbitMQBroker(ManagedProcess):
    """One private RabbitMQ node with the ``rabbitmq_mqtt`` plugin on free loopback ports.

    Nothing is shared with a RabbitMQ the system may run: the node has its
    own name (``cascade-test-<pid>-<n>@localhost``), AMQP, MQTT and
    distribution ports (no management plugin), and its own configuration,
    enabled-plugins file, database, logs and Erlang cookie, all in a
    temporary directory (its ``HOME``). Started as root, the node runs as the
    ``rabbitmq`` user, who then owns that directory. MQTT clients may log in
    anonymously (as ``guest``) or as ``guest``/``guest``.

    RabbitMQ 3.x speaks MQTT 3.1.1 only (:attr:`supports_mqtt5` is False). Its
    database lives in the directory, so retained messages survive
    :meth:`restart`. Booting takes seconds (:attr:`boot_seconds` is the last
    one): share one node per test session.

    ``definitions`` (users, permissions, topic permissions, as RabbitMQ's definitions
    file has them; :func:`rabbitmq_user` makes a user) are loaded when it boots.

    :meth:`add_definitions` imports more into the running node; :meth:`ctl` runs
    ``rabbitmqctl`` against it.

    ``start()``/``stop()``/``kill()``/``restart()`` (same ports),
    ``pause()``/``resume()`` (SIGSTOP/SIGCONT), ``close()``; also a context manager.
    """

    is_mosquitto = False
    supports_mqtt5 = False
    family = "rabbitmq"
    host = "127.0.0.1"

    _numbers = itertools.count(1)

    def __init__(
        self,
        *,
        extra_config: str = "",
        startup_timeout: float = 90.0,
        definitions: dict[str, Any] | None = None,
    ) -> None:
        executable = rabbitmq_server_path()
        if executable is None:
            raise RuntimeError(NO_RABBITMQ)
        self._executable = executable
        self._tmp = tempfile.TemporaryDirectory(prefix="cascade-rabbitmq-")
        self.directory = Path(self._tmp.name)
        self.node_name = f"cascade-test-{os.getpid()}-{next(self._numbers)}@localhost"
        self.port = free_port()
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.config_path = self.directory / "rabbitmq.conf"
        self.log_dir = self.directory / "log"
        self.output_path = self.directory / "node-output.log"
        self.pid_path = self.directory / "node.pid"
        self.boot_seconds: float | None = None
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._account = _run_as()
        if definitions is not None:  # users, permissions, topic permissions: loaded at boot
            defined = self.directory / "definitions.json"
            defined.write_text(json.dumps(definitions))
            extra_config = f"load_definitions = {defined}\n{extra_config}"
        self._write_files(extra_config)

    def _write_files(self, extra_config: str) -> None:
        (self.directory / "mnesia").mkdir()
        self.log_dir.mkdir()
        self.config_path.write_text(
            "\n".join(
                [
                    f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}",
                    f"mqtt.listeners.tcp.local = 127.0.0.1:{self.port}",
                    "mqtt.allow_anonymous = true",
                    "mqtt.default_user = guest",
                    "mqtt.default_pass = guest",
                    "mqtt.vhost = /",
                    "mqtt.exchange = amq.topic",
                    extra_config,
                ]
            )
            + "\n"
        )
        (self.directory / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        # Sourced by the scripts instead of the system's /etc/rabbitmq/rabbitmq-env.conf.
        (self.directory / "rabbitmq-env.conf").write_text("")
        if self._account is not None:
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def environment(self) -> dict[str, str]:
        """The environment the node is started with (nothing inherited but PATH)."""
        directory = str(self.directory)
        path = os.environ.get("PATH", "/usr/bin:/bin")
        return {
            "PATH": f"{path}:/usr/sbin:/sbin",
            "HOME": directory,  # the Erlang cookie is made and read here
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_CONF_ENV_FILE": f"{directory}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": str(self.config_path),
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{directory}/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{directory}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{directory}/mnesia",
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(self.pid_path),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    @property
    def running(self) -> bool:
        """Whether the node's start script (and so the node) is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the Erlang VM running the node, once it has booted."""
        if self._process is None:
            return None
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def version(self) -> str | None:
        """``"RabbitMQ 3.10.8 on Erlang 25.2.3"`` as the node logged it at boot, if it did."""
        found = re.search(r"Starting (RabbitMQ \S+ on Erlang \S+)", self.log_text())
        return found.group(1) if found else None

    def log_text(self) -> str:
        """What the node printed and logged so far."""
        parts = [self.output_path, *sorted(self.log_dir.glob("*.log"))]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def start(self) -> None:
        """Start the node and wait until it has booted (its definitions imported) and its MQTT
        listener accepts a CONNECT.

        The listener starts before the definitions are applied (RabbitMQ 3.10 imports users and
        permissions concurrently after it): a login the definitions add was refused "not
        authorised" when tried as soon as the listener took the probe's.
        """
        if self.running:
            return
        started = time.monotonic()
        boots = self._boots()  # a restarted node's log has its earlier boots
        account = self._account
        with self.output_path.open("ab") as output:
            self._process = subprocess.Popen(
                [self._executable],
                cwd=self.directory,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # one process group: the script, the VM and its helpers
                user=account.pw_uid if account is not None else None,
                group=account.pw_gid if account is not None else None,
                extra_groups=[] if account is not None else None,
            )
        deadline = started + self._startup_timeout
        while not (self._boots() > boots and mqtt_accepts(self.port)):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"RabbitMQ node exited at startup:\n{self.log_text()}")
            if time.monotonic() > deadline:
                log = self.log_text()
                self.stop()
                raise RuntimeError(f"RabbitMQ did not accept MQTT in time:\n{log}")
            time.sleep(0.1)  # polling another process's state
        self.boot_seconds = time.monotonic() - started

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against the running node, as the node's user, with
        its cookie; its stdout. Each starts an Erlang VM: a second or few.

        Raises :class:`RuntimeError` with the output if it fails or outlives ``timeout``.
        """
        environment = self.environment()
        # the CLI's own distribution ports default to RABBITMQ_DIST_PORT + 10000, maybe > 65535
        del environment["RABBITMQ_DIST_PORT"]
        account = self._account
        try:
            done = subprocess.run(
                [os.path.join(os.path.dirname(self._executable), "rabbitmqctl"), "-n",
                 self.node_name, *args],
                cwd=self.directory,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
                user=account.pw_uid if account is not None else None,
                group=account.pw_gid if account is not None else None,
                extra_groups=[] if account is not None else None,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} took over {timeout} s") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed:\n{output}")
        return done.stdout.decode(errors="replace")

    def add_definitions(self, definitions: dict[str, Any]) -> None:
        """Import ``definitions`` (users, permissions, topic permissions, as
        ``RabbitMQBroker(definitions=...)`` takes them) into the running node, applied when it
        returns: one ``rabbitmqctl import_definitions`` (a second or few) where booting a node
        with them takes 15-20 s. Names of their own let tests share the node."""
        handle, name = tempfile.mkstemp(suffix=".json", prefix="defs-", dir=self.directory)
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(definitions))
        defined = Path(name)
        if self._account is not None:
            os.chown(defined, self._account.pw_uid, self._account.pw_gid)
        try:
            # the CLI's message says the import goes on after it returns; its RPC to
            # rabbit_definitions:import_parsed returns once they are applied
            self.ctl("import_definitions", str(defined))
        finally:
            defined.unlink(missing_ok=True)

    def _boots(self) -> int:
        """How many times the node's log says its startup is complete (definitions applied)."""
        return sum(
            path.read_text(errors="replace").count(_BOOTED) for path in self.log_dir.glob("*.log")
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (SIGTERM to its VM, then SIGKILL if it lingers); idempotent."""
        self.resume()  # a stopped VM would not act on SIGTERM
        pid = self.pid
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid if pid is not None else process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(process)
        # the VM's helpers (erl_child_setup, inet_gethost, the disk monitor) share the group
        self._kill_group(process)
        self.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill the node with SIGKILL, as a crash would."""
        self._paused = False
        process, self._process = self._process, None
        if process is not None:
            self._kill_group(process)
        self.pid_path.unlink(missing_ok=True)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def pause(self) -> None:
        """Hang the node with SIGSTOP (every process of it): connections stay open, nothing is
        answered."""
        if self._process is not None and not self._paused:
            os.killpg(self._process.pid, signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` with SIGCONT."""
        if self._process is not None and self._paused:
            os.killpg(self._process.pid, signal.SIGCONT)
            self._paused = False

    def restart(self) -> None:
        """Stop and start again on the same ports (retained messages are kept)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the node and delete its directory."""
        self.stop()
        self._tmp.cleanup()

    def __repr__(self) -> str:
        return (
            f"<RabbitMQBroker {self.node_name} mqtt=127.0.0.1:{self.port} running={self.running}>"
        )
