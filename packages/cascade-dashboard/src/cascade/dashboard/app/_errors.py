"""The error a dashboard's settings raise when they cannot be used."""

from __future__ import annotations

__all__ = ["SettingsError"]


class SettingsError(ValueError):
    """A setting the dashboard cannot work with (a token, a trusted proxy): it says which."""
