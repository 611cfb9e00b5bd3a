"""``cs.load_yaml``'s parser: PyYAML's safe loader, with the file's size and the document's
nodes bounded, each alias counted as the nodes it stands for, while the document is composed
(before any value is built): 320 bytes of nested aliases cannot become gigabytes."""

from __future__ import annotations

import os
from typing import Any

from ._bounds import BoundExceeded, check_bound

__all__ = ["load_yaml"]


def _loader(limit: int | None) -> Any:
    import yaml

    class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no types here
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.weights: dict[int, int] = {}  # a node's id: the nodes it stands for

        def compose_node(self, parent: Any, index: Any) -> Any:
            node = super().compose_node(parent, index)
            if id(node) in self.weights:  # an alias: the anchored node, weighed already
                return node
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            weight = 1
            for child in children:
                if id(child) not in self.weights:
                    raise yaml.YAMLError("cs.load_yaml: an alias refers to its own node")
                weight += self.weights[id(child)]
            check_bound(weight, limit, "load_yaml", "the document's nodes", "max_nodes")
            self.weights[id(node)] = weight
            return node

    return BoundedLoader


def load_yaml(path: str | os.PathLike[str], max_bytes: int | None, max_nodes: int | None) -> Any:
    """The YAML document at ``path``, parsed safely, within ``max_bytes`` and ``max_nodes``."""
    with open(path, "rb") as file:
        data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise BoundExceeded("load_yaml", "the file's size", max_bytes, "max_bytes")
    loader = _loader(max_nodes)(data.decode("utf-8"))
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
