"""The error a dashboard's settings raise when they cannot be used."""

from __future__ import annotations

from cascade.interfaces import CascadeError

__all__ = ["SettingsError"]


class SettingsError(CascadeError, ValueError):
    """A setting the dashboard cannot work with (a token, a trusted proxy): it says which."""
