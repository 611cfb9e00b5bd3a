"""Bounded label values: what keeps a hostile or buggy engine from growing the exporter."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_LABEL_VALUES", "MAX_LABEL_LENGTH", "OTHER", "LabelCap"]

DEFAULT_MAX_LABEL_VALUES = 200
"""Distinct values a capped label takes by default (per label: task, project, source)."""

MAX_LABEL_LENGTH = 128
"""Characters of a label value kept; longer values are cut (and may then share a series)."""

OTHER = "_other"
"""The one value every value beyond a label's cap is folded into."""


class LabelCap:
    """The values one label may take: the first ``limit`` distinct values seen, as they come.

    Any later value is folded into :data:`OTHER`, and each fold is counted in
    :attr:`folded` (exported as ``cascade_label_values_folded_total{label=...}``),
    so the series, and the memory behind them, stay bounded whatever engines
    send. The memory of the cap itself is at most ``limit`` values of at most
    :data:`MAX_LABEL_LENGTH` characters.
    """

    def __init__(self, name: str, limit: int = DEFAULT_MAX_LABEL_VALUES) -> None:
        if limit < 0:
            raise ValueError(f"a label's cap must be at least 0, not {limit}")
        self.name = name
        self.limit = limit
        self.folded = 0
        """Values folded into :data:`OTHER` so far (one per observation, not per distinct value)."""
        self._kept: set[str] = set()

    def __len__(self) -> int:
        return len(self._kept)

    def admits(self, value: str) -> bool:
        """Whether ``value`` (cut to :data:`MAX_LABEL_LENGTH`) has a series of its own;
        admits it when there is room."""
        value = value[:MAX_LABEL_LENGTH]
        if value in self._kept:
            return True
        if len(self._kept) < self.limit and value != OTHER:
            self._kept.add(value)
            return True
        return False

    def __call__(self, value: str) -> str:
        """The label value to use for ``value``: itself (cut) if admitted, else :data:`OTHER`."""
        if self.admits(value):
            return value[:MAX_LABEL_LENGTH]
        self.folded += 1
        return OTHER
