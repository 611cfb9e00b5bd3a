"""The app: the ASGI app and its server, its settings, the guards every request passes (hosts,
tokens, bodies), the page and the controls (a body read once into cascade.control)."""

from ._controls import MAX_BODY

__all__ = ["MAX_BODY"]
