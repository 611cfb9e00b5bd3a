"""``to_json``/``from_json``: a workflow written down as JSON and built again from it.

What is written is what the workflow *is*, not a run of it: each call of a task (the task
found again by its module and name, or as the provider of its name), its arguments (JSON
values, the calls it takes results of, its ``Param``s and ``inject``s, in lists, tuples and
dicts) and what it runs ``after``. A task is written by where it is defined, so only a task
a module defines at its top level (with its options: retries, timeouts, caches) can be built
again; what a JSON document cannot carry is refused when it is written, naming it: a
map, a condition or a router, options given to one call (``call.with_retry(...)``), a
value that is no JSON.

The format (``"format": "cascade.workflow/1"``)::

    {"format": "cascade.workflow/1", "target": <value>,
     "nodes": [{"id": "n0", "task": {"module": "m", "qualname": "f"} | {"provider": "format"},
                "args": [<value>...], "kwargs": {"k": <value>}, "after": ["n1"]}, ...]}

where a value is a JSON number, string, bool or null, a list (a Python list), or an object
with one key: ``{"$node": "n0"}`` (that call's result), ``{"$dict": {...}}``,
``{"$tuple": [...]}``, ``{"$param": {"name", "default", "type", "description"}}``,
``{"$inject": "name"}``.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from ._errors import CascadeRuntimeError
from ._providers import ProviderMissing, providers
from .workflow._param import REQUIRED, Param
from .workflow._resource import Inject
from .workflow._router import Router
from .workflow._task import ALWAYS, LazyResult, MappedLazyResult, Task

__all__ = ["FORMAT", "WorkflowJsonError", "from_json", "to_json"]

FORMAT = "cascade.workflow/1"
_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


class WorkflowJsonError(CascadeRuntimeError, ValueError):
    """A workflow ``to_json`` cannot write (the message names the task and what it has that
    JSON cannot carry), or a document ``from_json`` cannot build one from."""


def _task_ref(task: Task[Any, Any], where: str) -> dict[str, str]:
    fn = task.fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module and "<" not in qualname:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is task:
            return {"module": module, "qualname": qualname}
    try:
        if providers.get(task.name) is task:
            return {"provider": task.name}
    except ProviderMissing:
        pass
    raise WorkflowJsonError(
        f"{where}: the task {task.name!r} cannot be found again by its module and name "
        "(define it at a module's top level; options given to one call, such as "
        "call.with_retry(...), are not written: give them to the task)"
    )


class _Writer:
    def __init__(self) -> None:
        self.ids: dict[int, str] = {}
        self.nodes: list[dict[str, Any]] = []

    def node(self, lazy: LazyResult[Any]) -> str:
        known = self.ids.get(id(lazy))
        if known is not None:
            return known
        where = f"task {lazy.name!r} ({lazy.task_id})"
        if isinstance(lazy, MappedLazyResult):
            raise WorkflowJsonError(f"{where}: a map is not written as JSON")
        if lazy.condition is not ALWAYS:
            raise WorkflowJsonError(f"{where}: a condition (run_if) is not written as JSON")
        if lazy.resources is not lazy.task.resources:
            raise WorkflowJsonError(f"{where}: with_constraints is not written as JSON")
        if lazy.jumps is not None:
            raise WorkflowJsonError(f"{where}: a loop (bind) is not written as JSON")
        ref = _task_ref(lazy.task, where)
        args = [self.value(a, where) for a in lazy.args]
        kwargs = {k: self.value(v, where) for k, v in lazy.kwargs.items()}
        after = [self.node(dep) for dep in lazy.order]
        node_id = self.ids[id(lazy)] = f"n{len(self.nodes)}"
        self.nodes.append(
            {"id": node_id, "task": ref, "args": args, "kwargs": kwargs, "after": after}
        )
        return node_id

    def value(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, LazyResult):
            return {"$node": self.node(value)}
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if isinstance(value, tuple):
            return {"$tuple": [self.value(v, where) for v in value]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise WorkflowJsonError(f"{where}: a dict with keys that are not str")
            return {"$dict": {k: self.value(v, where) for k, v in value.items()}}
        if isinstance(value, Param):
            return {"$param": _param(value, where)}
        if isinstance(value, Inject):
            return {"$inject": value.name}
        if isinstance(value, Router):
            raise WorkflowJsonError(f"{where}: a Router is not written as JSON")
        raise WorkflowJsonError(f"{where}: a {type(value).__name__} is no JSON value")


def _param(param: Param[Any], where: str) -> dict[str, Any]:
    written: dict[str, Any] = {"name": param.name, "description": param.description}
    if param.default is not REQUIRED:
        default = param.default
        if not (default is None or isinstance(default, (bool, int, float, str))):
            raise WorkflowJsonError(f"{where}: Param {param.name!r} has a default that is no JSON")
        written["default"] = default
    if param.type is not None:
        name = getattr(param.type, "__name__", "")
        if _TYPES.get(name) is not param.type:
            raise WorkflowJsonError(
                f"{where}: Param {param.name!r} is typed {param.type!r}: only int, float, str "
                "and bool are written as JSON"
            )
        written["type"] = name
    return written


def to_json(target: Any, *, indent: int | None = None) -> str:
    """The workflow ``target`` builds (a lazy result, or a list, tuple or dict of them), as
    the JSON document :func:`from_json` builds it again from: what it is, not a run of it.
    :class:`WorkflowJsonError` naming what cannot be written (the module's docstring)."""
    writer = _Writer()
    written = writer.value(target, "the target")
    document = {"format": FORMAT, "target": written, "nodes": writer.nodes}
    return json.dumps(document, indent=indent)


def from_json(text: str | bytes) -> Any:
    """The target :func:`to_json` wrote, built again: new lazy results of the same tasks (each
    imported from its module, or the provider of its name) with the same arguments, params,
    injects and order; run it as any target. :class:`WorkflowJsonError` for a document that
    is none (naming what is wrong) or names a task that cannot be found."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise WorkflowJsonError(f"from_json: not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise WorkflowJsonError(f"from_json: not a workflow document (format {FORMAT!r})")
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        raise WorkflowJsonError("from_json: 'nodes' is not a list")
    built: dict[str, LazyResult[Any]] = {}
    params: dict[str, Param[Any]] = {}
    for index, node in enumerate(nodes):
        where = f"from_json: nodes[{index}]"
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise WorkflowJsonError(f"{where} is not a node with an 'id'")
        task = _find_task(node.get("task"), where)
        args = node.get("args", [])
        kwargs = node.get("kwargs", {})
        after = node.get("after", [])
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise WorkflowJsonError(f"{where}: 'args' is no list or 'kwargs' no object")
        if not isinstance(after, list):
            raise WorkflowJsonError(f"{where}: 'after' is no list")
        lazy = task(
            *(_read(a, built, params, where) for a in args),
            **{k: _read(v, built, params, where) for k, v in kwargs.items()},
        )
        if after:
            lazy = lazy.after(*(_node(ref, built, where) for ref in after))
        built[node["id"]] = lazy
    return _read(document.get("target"), built, params, "from_json: the target")


def _find_task(ref: Any, where: str) -> Task[Any, Any]:
    if not isinstance(ref, dict):
        raise WorkflowJsonError(f"{where}: 'task' is not an object")
    if isinstance(ref.get("provider"), str):
        try:
            found: Any = providers.get(ref["provider"])
        except ProviderMissing as exc:
            raise WorkflowJsonError(f"{where}: {exc}") from exc
    else:
        module, qualname = ref.get("module"), ref.get("qualname")
        if not isinstance(module, str) or not isinstance(qualname, str):
            raise WorkflowJsonError(f"{where}: 'task' names no module and qualname")
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            raise WorkflowJsonError(f"{where}: the module {module!r} cannot be imported") from exc
        for part in qualname.split("."):
            found = getattr(found, part, None)
    if not isinstance(found, Task):
        raise WorkflowJsonError(f"{where}: {ref} is no task")
    return found


def _node(ref: Any, built: dict[str, LazyResult[Any]], where: str) -> LazyResult[Any]:
    if not isinstance(ref, str) or ref not in built:
        raise WorkflowJsonError(f"{where}: {ref!r} names no node written before it")
    return built[ref]


def _read(
    value: Any, built: dict[str, LazyResult[Any]], params: dict[str, Param[Any]], where: str
) -> Any:
    if isinstance(value, list):
        return [_read(v, built, params, where) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise WorkflowJsonError(f"{where}: an object of one '$' key was expected: {value!r}")
    ((tag, inner),) = value.items()
    if tag == "$node":
        return _node(inner, built, where)
    if tag == "$tuple" and isinstance(inner, list):
        return tuple(_read(v, built, params, where) for v in inner)
    if tag == "$dict" and isinstance(inner, dict):
        return {k: _read(v, built, params, where) for k, v in inner.items()}
    if tag == "$inject" and isinstance(inner, str):
        from .workflow._resource import inject

        return inject(inner)
    if tag == "$param" and isinstance(inner, dict) and isinstance(inner.get("name"), str):
        name = inner["name"]
        if name not in params:
            kind = _TYPES.get(inner["type"]) if isinstance(inner.get("type"), str) else None
            params[name] = Param(
                name,
                inner.get("default", REQUIRED),
                type=kind,
                description=str(inner.get("description", "")),
            )
        return params[name]
    raise WorkflowJsonError(f"{where}: {tag!r} is no value this format has")
