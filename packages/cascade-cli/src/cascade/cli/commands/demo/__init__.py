"""`cascade demo`: a demo workflow on an embedded broker; and what it says at its end."""

from ._command import demo

__all__ = ["demo"]
