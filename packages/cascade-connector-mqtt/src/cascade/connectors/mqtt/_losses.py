"""How a lost connection is reported: once as lost, and as unstable when it keeps happening."""

from __future__ import annotations

import logging

from cascade.connector_kit import RateLimitedLogger

from ._link import LinkError

__all__ = ["report_loss"]

_log = logging.getLogger("cascade.connectors.mqtt")


def report_loss(
    log: RateLimitedLogger,
    where: str,
    short_lived: int,
    uptime: float,
    failure: LinkError | None,
    delay: float,
) -> None:
    """Log why the connection to ``where`` ended after ``uptime`` seconds and when the next
    attempt comes (in ``delay``); ``short_lived``: connections in a row that ended soon after
    the broker accepted them (warned about, rate-limited, when it is more than none)."""
    if short_lived > 1:  # accepted again and dropped again: the broker refuses us
        log.warning(
            "unstable-repeated",
            "the broker at %s accepted and then closed %d connections in a row, this one "
            "after %.1f s (%s; another client with the same client id? an ACL?); "
            "retrying in %.1f s",
            where,
            short_lived,
            uptime,
            failure or "closed",
            delay,
        )
    elif short_lived:  # once proves nothing: a broker that went away looks the same
        log.warning(
            "unstable",
            "the connection to %s ended %.1f s after the broker accepted it (%s); "
            "retrying in %.1f s",
            where,
            uptime,
            failure or "closed",
            delay,
        )
    elif failure is None:
        _log.warning("lost the connection to %s; reconnecting", where)
    else:
        _log.warning("connection to %s failed (%s); reconnecting", where, failure)
