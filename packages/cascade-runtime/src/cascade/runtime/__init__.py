"""Cascade's workflow engine (see the package README)."""

__all__: list[str] = []
