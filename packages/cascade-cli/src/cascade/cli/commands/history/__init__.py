"""`cascade history`: the history database's schema, migrated or checked."""

from ._command import history_app

__all__ = ["history_app"]
