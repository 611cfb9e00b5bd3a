"""The link over aiomqtt and paho: the one folder allowed to touch their private names."""

from ._compat import FAST_PATH_VARIABLE
from ._link import PahoLink

__all__ = ["FAST_PATH_VARIABLE", "PahoLink"]
