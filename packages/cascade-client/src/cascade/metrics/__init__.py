"""Prometheus metrics of what a Cascade reader sees (``cascade-client[metrics]``;
``cascade-cli[metrics]`` and ``cascade-dashboard`` bring it).

:class:`CascadeMetrics` turns a :class:`~cascade.reader.ReaderModel` fed with the
broker's messages into counters, a histogram and gauges in a registry of its
own; `cascade dashboard` serves them at ``/metrics`` and `cascade record` with
``--metrics-listen HOST:PORT`` (:class:`MetricsServer`). docs/metrics.md lists
every metric. Importing this package needs prometheus-client.
"""

from ._exporter import CONTENT_TYPE, DURATION_BUCKETS, CascadeMetrics
from ._http import MetricsServer
from ._labels import DEFAULT_MAX_LABEL_VALUES, MAX_LABEL_LENGTH, OTHER, LabelCap
from ._listen import bind

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_LABEL_VALUES",
    "DURATION_BUCKETS",
    "MAX_LABEL_LENGTH",
    "OTHER",
    "CascadeMetrics",
    "LabelCap",
    "MetricsServer",
    "bind",
]
