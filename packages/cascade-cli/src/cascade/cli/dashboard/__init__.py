"""`cascade dashboard`: a live web page of runs, tasks, engines and constraints, with controls.

Needs the ``dashboard`` extra: ``pip install 'cascade-cli[dashboard]'``.
"""

from ._hub import DashboardHub, constraint_messages
from ._model import DashboardModel, Segment
from ._serve import serve_dashboard

__all__ = ["DashboardHub", "DashboardModel", "Segment", "constraint_messages", "serve_dashboard"]
