"""Providers: ``cs.<name>`` found through the ``cascade.providers`` entry-point group.

A package adds ``cs.<name>`` by naming a provider under the group in its metadata
(``[project.entry-points."cascade.providers"] "my.thing" = "pkg.mod:MyProvider"``): an
object, made by calling what the entry point loads with no arguments, with a ``name``
(``"my.thing"``: ``cs.my.thing``) and ``create_factory()``, which returns the task factory
``cs.my.thing`` stands for. That is the Cascade engine's shape, so its providers' packages
work here unchanged. The group is read once, the first time a name the module does not
have is asked for; a provider is loaded the first time its name (or a name below it) is
asked for, so an import of ``cascade.runtime`` reads no metadata and loads no provider.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import CascadeRuntimeError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["GROUP", "Provider", "ProviderMissing", "ProviderNamespace", "Providers", "providers"]

GROUP = "cascade.providers"
_log = logging.getLogger("cascade.runtime.providers")


class Provider(Protocol):
    """What a ``cascade.providers`` entry point makes: ``name`` (dotted names are namespaces:
    ``"io.local.read_text"`` is ``cs.io.local.read_text``) and ``create_factory()``, the
    task factory (a :func:`~cascade.runtime.task`, or a function that builds lazy results)
    ``cs.<name>`` is."""

    @property
    def name(self) -> str:
        """The name ``cs.<name>`` finds the provider by."""
        ...

    def create_factory(self) -> Callable[..., Any]:
        """The factory ``cs.<name>`` returns."""
        ...


class ProviderMissing(CascadeRuntimeError, AttributeError):
    """``cs.<name>`` names neither a public name of :mod:`cascade.runtime` nor an installed
    provider (or one that failed to load: the message says why, and ``__cause__`` is its
    error). An :class:`AttributeError`, so ``hasattr`` and ``getattr(cs, name, default)``
    work as on any module. ``installed``: the provider names that are."""

    def __init__(self, name: str, installed: list[str], failure: str | None = None) -> None:
        self.provider = name
        self.installed = installed
        listed = ", ".join(installed) if installed else "none"
        why = (
            f"the provider {name!r} failed to load: {failure}"
            if failure
            else (f"module 'cascade.runtime' has no attribute or provider {name!r}")
        )
        super().__init__(f"{why} (installed providers: {listed})", name=name)


class ProviderNamespace:
    """``cs.read`` where providers are named ``read.text``, ``read.bytes``: its attributes
    are the providers (and namespaces) below it."""

    def __init__(self, registry: Providers, prefix: str) -> None:
        self._registry = registry
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._registry.get(f"{self._prefix}.{name}")

    def __dir__(self) -> list[str]:
        below = f"{self._prefix}."
        return sorted(
            {n[len(below) :].split(".")[0] for n in self._registry.names() if n.startswith(below)}
        )

    def __repr__(self) -> str:
        return f"<cascade provider namespace {self._prefix!r}>"


class Providers:
    """The providers of the ``cascade.providers`` group, read once and loaded on demand."""

    def __init__(self, group: str = GROUP) -> None:
        self._group = group
        self._lock = threading.RLock()  # a factory being made may ask for another provider
        self._entry_points: dict[str, EntryPoint] | None = None
        self._factories: dict[str, Any] = {}
        self._attempted: set[str] = set()
        self._failed: dict[str, BaseException] = {}

    def names(self) -> list[str]:
        """The names of the installed providers (those that failed to load left out)."""
        with self._lock:
            points = self._discovered()
            known = set(points) | set(self._factories)
            return sorted(n for n in known if n not in self._failed)

    def get(self, name: str) -> Any:
        """The factory of the provider ``name``, or a :class:`ProviderNamespace` when
        providers are named below it; :class:`ProviderMissing` otherwise."""
        with self._lock:
            points = self._discovered()
            if name in self._factories:
                return self._factories[name]
            if name in points and name not in self._attempted:
                self._load(name, points[name])
                if name in self._factories:
                    return self._factories[name]
            if any(n.startswith(f"{name}.") for n in (*points, *self._factories)):
                return ProviderNamespace(self, name)
            if name not in self._failed:
                # A provider's ``name`` may differ from its entry point's: load the rest once.
                for point_name, point in points.items():
                    if point_name not in self._attempted:
                        self._load(point_name, point)
                if name in self._factories:
                    return self._factories[name]
            failure = self._failed.get(name)
            installed = sorted(n for n in {*points, *self._factories} if n not in self._failed)
        error = ProviderMissing(name, installed, str(failure) if failure else None)
        raise error from failure

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            found: dict[str, EntryPoint] = {}
            for point in entry_points(group=self._group):
                if point.name in found and found[point.name].value != point.value:
                    _log.warning(
                        "two providers are named %r (%s and %s): the first is used",
                        point.name,
                        found[point.name].value,
                        point.value,
                    )
                    continue
                found.setdefault(point.name, point)
            self._entry_points = found
        return self._entry_points

    def _load(self, point_name: str, point: EntryPoint) -> None:
        """Load one entry point's provider: a failure is logged, kept, and never raised."""
        self._attempted.add(point_name)
        try:
            made = point.load()()
            name = getattr(made, "name", None)
            create = getattr(made, "create_factory", None)
            if not isinstance(name, str) or not callable(create):
                raise TypeError(
                    f"{point.value} is not a provider: it needs a str 'name' and a "
                    "'create_factory()'"
                )
            factory = create()
        except Exception as exc:  # a plug-in's failure must not break the import or the rest
            _log.warning("the provider %r (%s) failed to load: %s", point_name, point.value, exc)
            self._failed[point_name] = exc
            return
        if name != point_name:
            _log.warning(
                "the provider of the entry point %r is named %r: cs.%s finds it",
                point_name,
                name,
                name,
            )
        self._factories[name] = factory


providers = Providers()
