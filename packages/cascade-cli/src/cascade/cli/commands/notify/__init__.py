"""`cascade notify`: webhooks when runs fail, tasks are held, holds near their deadline and
engines are lost (cascade-notify)."""

from ._command import notify

__all__ = ["notify"]
