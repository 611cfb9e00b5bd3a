"""`cascade record`: the broker recorded into the history; and its metrics (``Exporter``: the
readers' metrics of what it receives, and the recorder's own)."""

from ._command import record
from ._record import Exporter

__all__ = ["Exporter", "record"]
