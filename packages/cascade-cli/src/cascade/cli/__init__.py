"""The `cascade` command (see the package README)."""

__all__: list[str] = []
