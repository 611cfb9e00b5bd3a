"""``--listen HOST:PORT``: the CLI's helpers (``cascade.cli._listen``), as the dashboard uses."""

from .._listen import bind, is_loopback, parse_listen

__all__ = ["bind", "is_loopback", "parse_listen"]
