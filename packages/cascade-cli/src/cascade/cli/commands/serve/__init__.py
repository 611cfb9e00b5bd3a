"""`cascade serve PATH.py:NAME`: serve a file's workflows until stopped."""

from ._command import serve

__all__ = ["serve"]
