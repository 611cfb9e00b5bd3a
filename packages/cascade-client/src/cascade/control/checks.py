"""The checks of who issues a request and why, as every face makes them of what a person typed
(the CLI's ``--as`` and ``--reason``, the dashboard's signed-in names and request bodies): the
same bounds, the same :class:`~cascade.control.ControlError` naming the field."""

from cascade.interfaces.wire import (
    MAX_REASON_LENGTH,
    checked_name,
    checked_reason,
    default_operator,
)

__all__ = ["MAX_REASON_LENGTH", "checked_name", "checked_reason", "default_operator"]
