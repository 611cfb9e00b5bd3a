"""The app: the ASGI app and its server, its settings, the page and the controls (a body read
once into cascade.control); the guards every request passes are the package's ``_guard``."""

from ._controls import MAX_BODY

__all__ = ["MAX_BODY"]
