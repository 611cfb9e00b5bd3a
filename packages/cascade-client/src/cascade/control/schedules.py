"""Served schedules as a steering program sees them: each schedule once across the servers that
announce it (:func:`schedules_of`, what :meth:`~cascade.control.Controller.schedules` returns),
and the bound on one backfill (:data:`BACKFILL_MAX`). `cascade schedules`, `cascade backfill`
and the dashboard's Schedules panel read them here."""

from ._schedules import BACKFILL_MAX, ScheduleView, schedules_of

__all__ = ["BACKFILL_MAX", "ScheduleView", "schedules_of"]
