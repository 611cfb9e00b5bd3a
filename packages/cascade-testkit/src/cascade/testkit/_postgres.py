"""A private PostgreSQL cluster for the tests: ``initdb`` in a temp dir, on a free loopback port.

Found where Debian puts it (``/usr/lib/postgresql/<version>/bin``, the newest)
or on ``PATH``. Run as the ``postgres`` user when the tests run as root (the
server refuses root), which then owns the temp dir. Trust authentication on
127.0.0.1 and a unix socket in the temp dir only; stopped by its pid (a fast
shutdown, SIGINT, then SIGKILL if it lingers) and its directory removed. A
fault test stops the server and starts it again on the same port and data
(:meth:`PrivatePostgreSQL.stop_server`, :meth:`PrivatePostgreSQL.start_server`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from ._managed import ManagedProcess
from ._ports import free_port

__all__ = ["NO_POSTGRESQL", "PrivatePostgreSQL", "postgresql_bin"]

NO_POSTGRESQL = (
    "PostgreSQL is not installed (initdb and postgres not found on PATH or in "
    "/usr/lib/postgresql/*/bin; Debian: apt-get install postgresql)"
)


def postgresql_bin() -> Path | None:
    """The folder of ``initdb`` and ``postgres``: Debian's newest, else the one on ``PATH``."""

    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parents[1].name
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    candidates = [Path(p).parent for p in debian]
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "postgres").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


class PrivatePostgreSQL(ManagedProcess):
    """One PostgreSQL server of the tests' own; ``url(database)`` for SQLAlchemy."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.host = "127.0.0.1"
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self._user, timeout=120)

    def start(self) -> None:
        """initdb a cluster in a new temp dir, start it, and wait until it answers."""
        self.root = Path(tempfile.mkdtemp(prefix="cascade-pg-"))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.port = free_port()
        self.start_server()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start_server(self) -> None:
        """Start the server on the cluster and port it has, and wait until it answers."""
        data = self.root / "data"
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server's, until it ends
        self._process = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                "fsync=off",  # a test cluster: speed over durability
                "-c",
                "max_connections=50",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._user,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    text = (self.root / "postgres.log").read_text(errors="replace")
                    self.close()
                    raise RuntimeError(f"PostgreSQL did not start:\n{text}") from None
                time.sleep(0.1)

    def dsn(self, database: str) -> str:
        """A libpq connection string for ``database``."""
        return f"host={self.host} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for ``database`` (``postgresql://``, driven by psycopg)."""
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing what is still connected to it."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop_server(self) -> None:
        """Stop the server by its pid (a fast shutdown: sessions are ended), keeping its data."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop the server by its pid (fast shutdown) and remove its directory."""
        self.stop_server()
        if self.root != Path():  # a start that failed before making it: nothing to remove
            shutil.rmtree(self.root, ignore_errors=True)
