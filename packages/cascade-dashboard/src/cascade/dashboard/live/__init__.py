"""The live view: the hub (the one broker connection), the model it feeds, fleet mode, the
pages' streams and the changes they send, and who may open them."""

from ._deltas import STREAM_INTERVAL, Follower
from ._fair_share import Claimant, HistoryReaders, Slot, StreamSlots
from ._lines import MAX_LINE_SHOWN
from ._model import DashboardModel
from ._streams import BEHIND_AFTER, KEEPALIVE, MAX_OWING, Snapshots, change_events
from ._timelines import MAX_SEGMENTS_PER_TASK

__all__ = [
    "BEHIND_AFTER",
    "KEEPALIVE",
    "MAX_LINE_SHOWN",
    "MAX_OWING",
    "MAX_SEGMENTS_PER_TASK",
    "STREAM_INTERVAL",
    "Claimant",
    "DashboardModel",
    "Follower",
    "HistoryReaders",
    "Slot",
    "Snapshots",
    "StreamSlots",
    "change_events",
]
