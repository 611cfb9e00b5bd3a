"""``override_resource``: a test's fake in place of an engine's resource, for a while."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._engine import Engine
from .workflow._resource import Resource, ResourceMissing

__all__ = ["override_resource"]


@contextmanager
def override_resource(
    engine: Engine, name: str, replacement: Resource | Callable[..., Any]
) -> Iterator[Resource]:
    """Within the ``with`` block, runs the engine starts give the tasks that inject ``name``
    what ``replacement`` yields: a resource (``@resource``, whatever its own name) or a
    generator function; the resource registered before is registered again at the block's
    end, whatever happens in it (the Cascade engine's ``cs.override_resource``). ``name``
    must be registered: :class:`ResourceMissing` otherwise (a test that overrides a
    resource its engine does not have tests nothing). Yields the resource put in place."""
    original = engine.resources.get(name)
    if original is None:
        known = ", ".join(sorted(engine.resources)) or "none"
        raise ResourceMissing(
            f"override_resource: the engine has no resource {name!r} (registered: {known})"
        )
    fn = replacement.fn if isinstance(replacement, Resource) else replacement
    fake = Resource(fn, name)
    engine.register(fake)
    try:
        yield fake
    finally:
        engine.register(original)
