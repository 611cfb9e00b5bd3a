"""Bounded label values: what keeps a hostile or buggy engine from growing the exporter."""

from __future__ import annotations

from cascade.reader import inert

__all__ = ["DEFAULT_MAX_LABEL_VALUES", "MAX_LABEL_LENGTH", "OTHER", "LabelCap", "label_value"]

DEFAULT_MAX_LABEL_VALUES = 200
"""Distinct values a capped label takes by default (per label: task, project, source)."""

MAX_LABEL_LENGTH = 128
"""Characters of a label value kept; longer values are cut (and may then share a series)."""


def label_value(value: str) -> str:
    """``value`` as a label value: every control character escaped as a terminal view shows it
    (:func:`~cascade.reader.inert`, ``\\x1b``), then cut to :data:`MAX_LABEL_LENGTH`."""
    return inert(value, MAX_LABEL_LENGTH)[:MAX_LABEL_LENGTH]


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
        """Whether ``value`` (as :func:`label_value` shows it) has a series of its own;
        admits it when there is room."""
        value = label_value(value)
        if value in self._kept:
            return True
        if len(self._kept) < self.limit and value != OTHER:
            self._kept.add(value)
            return True
        return False

    def __call__(self, value: str) -> str:
        """The label value to use for ``value``: :func:`label_value` if admitted, else
        :data:`OTHER`."""
        if self.admits(value):
            return label_value(value)
        self.folded += 1
        return OTHER
