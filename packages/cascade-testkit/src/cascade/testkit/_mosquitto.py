"""A private mosquitto for tests and benchmarks: started, hung, resumed and restarted on demand."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ._certs import TestCertificates, make_test_certificates
from ._managed import ChildProcess, executable
from ._ports import free_port

__all__ = ["MosquittoBroker", "mosquitto_path"]


def mosquitto_path() -> str | None:
    """Where the ``mosquitto`` executable is, or ``None`` when it is not installed."""
    return executable("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class MosquittoBroker(ChildProcess):
    """One private ``mosquitto`` on free loopback port(s), configured from a generated file.

    ``users`` (name → password) makes a password file and turns anonymous
    access off; ``acl`` is the text of an ACL file; ``persistence=True``
    keeps retained messages across ``restart()``; ``tls=True`` adds a TLS
    listener on :attr:`tls_port` with a CA and server certificate generated
    for the test (:attr:`certificates`); ``tls_only=True`` (with ``tls``) has
    the TLS listener only, so :attr:`port` is :attr:`tls_port`. The generated files are
    world-readable and mosquitto logs to stderr (kept in :attr:`log_path`),
    so it works whether or not mosquitto drops privileges.

    ``start()``/``stop()``/``restart()`` (same ports), ``pause()`` (SIGSTOP:
    a hung broker that keeps its sockets open) and ``resume()`` (SIGCONT).
    Also a context manager.
    """

    is_mosquitto = True
    supports_mqtt5 = True
    host = "127.0.0.1"

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: bool = False,
        tls_only: bool = False,
        persistence: bool = False,
        extra_config: str = "",
        startup_timeout: float = 10.0,
    ) -> None:
        executable = mosquitto_path()
        if executable is None:
            raise RuntimeError("mosquitto is not installed")
        self._executable = executable
        self._tmp = tempfile.TemporaryDirectory(prefix="cascade-mosquitto-")
        self.directory = Path(self._tmp.name)
        self.directory.chmod(0o755)
        if tls_only and not tls:
            raise ValueError("tls_only needs tls=True")
        self.tls_only = tls_only
        self.tls_port: int | None = free_port() if tls else None
        self.port = self.tls_port if tls_only and self.tls_port is not None else free_port()
        self.certificates: TestCertificates | None = (
            make_test_certificates(self.directory / "certs") if tls else None
        )
        self.users = dict(users or {})
        self.log_path = self.directory / "mosquitto.log"
        self.config_path = self.directory / "mosquitto.conf"
        self._startup_timeout = startup_timeout
        self._write_config(acl, persistence, extra_config)

    def _write_config(self, acl: str | None, persistence: bool, extra_config: str) -> None:
        lines = [
            "per_listener_settings false",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 0",
        ]
        if not self.tls_only:
            lines.append(f"listener {self.port} 127.0.0.1")
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        if self.users:
            password_file = self.directory / "passwords"
            password_file.write_text("")
            for name, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(password_file), name, password],
                    check=True,
                    capture_output=True,
                )
            password_file.chmod(0o644)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = self.directory / "acl"
            acl_file.write_text(acl)
            acl_file.chmod(0o644)
            lines.append(f"acl_file {acl_file}")
        if self.certificates is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.certificates.ca_cert}",
                f"certfile {self.certificates.server_cert}",
                f"keyfile {self.certificates.server_key}",
            ]
        lines.append(extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")
        self.config_path.chmod(0o644)

    def start(self) -> None:
        """Start mosquitto and wait until every listener accepts connections."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self._executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._paused = False
        ports = sorted({self.port} | ({self.tls_port} if self.tls_port is not None else set()))
        deadline = time.monotonic() + self._startup_timeout
        while not all(_port_open(port) for port in ports):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"mosquitto exited at startup:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen in time:\n{self.log_text()}")
            time.sleep(0.02)  # polling another process's state

    def close(self) -> None:
        """Stop mosquitto and delete the generated files."""
        self.stop()
        self._tmp.cleanup()

    def __repr__(self) -> str:
        return f"<MosquittoBroker 127.0.0.1:{self.port} running={self.running}>"
