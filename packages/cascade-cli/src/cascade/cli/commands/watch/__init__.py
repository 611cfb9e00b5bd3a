"""`cascade watch`: the live view; and its screen."""

from ._command import watch

__all__ = ["watch"]
