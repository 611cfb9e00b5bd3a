"""`cascade dashboard`: the face of cascade-dashboard (its options, its sign-in, its demo)."""

from ._command import dashboard

__all__ = ["dashboard"]
