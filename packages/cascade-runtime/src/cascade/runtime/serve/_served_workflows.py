"""The workflows a serving engine offers: each a function that builds a target from params,
described for its announcement, and called with a request's params once they are converted to
its annotations (:mod:`._served_params`); or a target whose :class:`Param` are its params,
converted by the same converter and bound when its run starts.

A function's params are its parameters and, when it can be called without arguments, the
:class:`Param` of the graph it builds so (a module-level ``day = Param("day")`` its tasks
take, the original engine's idiom): a request's value for such a Param goes to its run, as a
served target's does. A parameter's description is read from the function's docstring
(Google, NumPy or Sphinx style), a Param's from the Param.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from cascade.interfaces.serving import ServedWorkflow, WorkflowParam
from cascade.interfaces.wire import check_workflow_name

from ..workflow._graph import build_graph
from ..workflow._param import Param, bind_params
from ..workflow._task import LazyResult, task_ids_unspent
from ._served_params import ParamTypes

__all__ = ["Served", "ServedFunction", "ServedGraph", "served_functions"]

_log = logging.getLogger("cascade.runtime.serve")

_TEXT = 1024  # an announcement's text fields are at most this long
_MAX_PARAMS = 64  # ServedWorkflow.params' bound
_MAX_WORKFLOWS = 256  # ServedAnnouncement.workflows' bound


@dataclass(frozen=True, slots=True)
class ServedFunction:
    """A served workflow: its ``name``, the function that builds its target, what the
    announcement says of it (``described``) and the types its params take (``types``)."""

    name: str
    build: Callable[..., Any]
    signature: inspect.Signature
    described: ServedWorkflow
    types: ParamTypes
    graph_params: Mapping[str, Param[Any]]
    """The Params of the graph it builds without arguments, that are not its parameters (by
    name; empty when it takes arguments it has no default for, or builds none)."""

    def _split(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params`` as the call's and the graph's Params'."""
        call = {k: v for k, v in params.items() if k not in self.graph_params}
        return call, {k: v for k, v in params.items() if k in self.graph_params}

    def convert(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` (a request's JSON) converted to the function's annotations and its
        graph's Params' types; ``TypeError`` naming the first that does not convert
        (``parameter n must be int, not str ("5")``)."""
        call, graph = self._split(params)
        bind_params(self.graph_params, graph)
        return {**self.types.convert(call), **graph}

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments a call with ``params`` gets, and its graph's Params' values, defaults
        included, as JSON values (a default that has none is left out); ``TypeError`` when
        they do not fit the signature (``missing a required argument: 'day'``)."""
        params, graph = self._split(params)
        bound = self.signature.bind(**params)
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                arguments[name] = value
        arguments.update(bind_params(self.graph_params, graph))
        encoded: dict[str, Any] = {}
        for name, value in arguments.items():
            ok, as_json = _json(value)
            if ok:
                encoded[name] = as_json
        return encoded

    async def target(self, params: Mapping[str, Any]) -> Any:
        """Call the function with its own ``params`` (awaiting it when it is a coroutine
        function)."""
        built = self.build(**self._split(params)[0])
        if inspect.isawaitable(built):
            built = await built
        return built

    def run_params(self, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """What its run binds its :class:`Param` to: those of ``params`` its graph's Params
        take (``None`` when it has none: every param went to the call)."""
        return self._split(params)[1] if self.graph_params else None


@dataclass(frozen=True, slots=True)
class ServedGraph:
    """A served workflow that is a target (a lazy result, or a list, tuple or dict of them):
    its params are its graph's :class:`Param`, given to its run."""

    name: str
    graph_target: Any
    params: Mapping[str, Param[Any]]
    described: ServedWorkflow

    def convert(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` as given, once its Params take them (:class:`ParamError`, a
        ``TypeError``, naming the first that does not: unknown, missing or ill-typed)."""
        bind_params(self.params, params)
        return dict(params)

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every Param's value as JSON, defaults included (one that has none is left out)."""
        encoded: dict[str, Any] = {}
        for name, value in bind_params(self.params, params).items():
            ok, as_json = _json(value)
            if ok:
                encoded[name] = as_json
        return encoded

    async def target(self, params: Mapping[str, Any]) -> Any:
        """The target, the same for every run: its Params are bound by its run."""
        return self.graph_target

    def run_params(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """What its run binds its Params to: the params given."""
        return params


Served = ServedFunction | ServedGraph


def _served(workflows: Mapping[str, Any]) -> dict[str, Served]:
    """Each of ``workflows`` checked and described; ``ValueError`` (a bad name, neither
    callable nor a target, a parameter that a request cannot give by name, two Params of one
    name that differ) or ``TypeError`` (an annotation that does not resolve, or that no JSON
    value converts to)."""
    if not workflows:
        raise ValueError("serve() needs at least one workflow")
    if len(workflows) > _MAX_WORKFLOWS:
        raise ValueError(f"serve() takes at most {_MAX_WORKFLOWS} workflows, not {len(workflows)}")
    served: dict[str, Served] = {}
    for name, build in workflows.items():
        check_workflow_name(name)
        if _is_target(build):
            served[name] = _served_graph(name, build)
            continue
        if not callable(build):
            raise TypeError(
                f"workflow {name!r} is {build!r}, neither a function that builds a target nor "
                "a target"
            )
        signature = inspect.signature(build)
        described_in_doc = _described_in_docstring(build)
        params = [
            _param(p, described_in_doc.get(p.name, ""))
            for p in signature.parameters.values()
            if _named(name, p)
        ]
        graph_params = _graph_params(name, build, signature)
        params += [_graph_param(param) for param in graph_params.values()]
        if len(params) > _MAX_PARAMS:
            raise ValueError(f"workflow {name!r} has {len(params)} parameters; at most 64")
        doc = (inspect.getdoc(build) or "").strip().splitlines()
        described = ServedWorkflow(name=name, params=params, doc=doc[0][:_TEXT] if doc else "")
        types = ParamTypes.of(name, build, signature)
        served[name] = ServedFunction(name, build, signature, described, types, graph_params)
    return served


def _graph_params(
    workflow: str, build: Callable[..., Any], signature: inspect.Signature
) -> dict[str, Param[Any]]:
    """The Params of the graph ``build`` makes when called without arguments, but those that
    are its own parameters' names (``ValueError``: a request could not tell the two apart).
    Nothing when it needs arguments, is a coroutine function (serving starts without awaiting
    the user's code), or its call fails or builds no target (logged: it is then served by its
    parameters alone, as a function whose graph differs per call is)."""
    needs = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if needs or inspect.iscoroutinefunction(build):
        return {}
    try:
        with task_ids_unspent():  # its runs' task ids as they would have been
            built = build()
            found = build_graph(built).params if _is_target(built) else {}
    except Exception as exc:
        _log.warning(
            "workflow %r: building its target without arguments (to list its graph's Params) "
            "raised %s: %s; served by its parameters alone",
            workflow,
            type(exc).__name__,
            exc,
        )
        return {}
    both = sorted(set(found) & set(signature.parameters))
    if both:
        raise ValueError(
            f"workflow {workflow!r}: {', '.join(both)} is both a parameter of the function and "
            "a Param of the graph it builds; a request could not tell which it gives: rename one"
        )
    return dict(found)


def _described_in_docstring(build: Callable[..., Any]) -> dict[str, str]:
    """Each parameter's description in ``build``'s docstring (Google, NumPy or Sphinx style,
    read by docstring_parser), by name; an empty dict when there is none or it does not
    parse."""
    doc = inspect.getdoc(build)
    if not doc:
        return {}
    import docstring_parser  # only when serving starts: a plain run never needs it

    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return {}
    return {
        param.arg_name: " ".join(param.description.split())[:_TEXT]
        for param in parsed.params
        if param.description
    }


def _is_target(value: Any) -> bool:
    if isinstance(value, LazyResult):
        return True
    items = value.values() if isinstance(value, dict) else value
    return (
        isinstance(value, (list, tuple, dict))
        and bool(value)
        and all(isinstance(item, LazyResult) for item in items)
    )


def _served_graph(name: str, target: Any) -> ServedGraph:
    params = build_graph(target).params
    if len(params) > _MAX_PARAMS:
        raise ValueError(f"workflow {name!r} has {len(params)} parameters; at most 64")
    described = [_graph_param(param) for param in params.values()]
    return ServedGraph(name, target, params, ServedWorkflow(name=name, params=described))


def _graph_param(param: Param[Any]) -> WorkflowParam:
    written = "" if param.type is None else inspect.formatannotation(param.type)
    described = WorkflowParam(
        name=param.name,
        required=param.required,
        annotation=written[:_TEXT],
        description=param.description[:_TEXT],
    )
    if not param.required:
        ok, default = _json(param.default)
        if ok:
            described.default = default
    return described


def _named(workflow: str, param: inspect.Parameter) -> bool:
    """Whether a request names ``param`` (``*args`` and ``**kwargs`` are not described)."""
    if param.kind is inspect.Parameter.POSITIONAL_ONLY and param.default is param.empty:
        raise ValueError(
            f"workflow {workflow!r}: parameter {param.name!r} is positional-only, and a "
            "request gives params by name"
        )
    return param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def _param(param: inspect.Parameter, description: str) -> WorkflowParam:
    annotation = param.annotation
    if annotation is param.empty:
        text = ""
    elif isinstance(annotation, str):
        text = annotation
    else:
        text = inspect.formatannotation(annotation)
    if param.default is param.empty:
        return WorkflowParam(name=param.name, annotation=text[:_TEXT], description=description)
    ok, default = _json(param.default)
    described = WorkflowParam(
        name=param.name, required=False, annotation=text[:_TEXT], description=description
    )
    if ok:
        described.default = default
    return described


def _json(value: Any) -> tuple[bool, Any]:
    """Whether ``value`` travels as JSON, and as what."""
    try:
        return True, msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, ValueError, msgspec.EncodeError):
        return False, None


MAX_DESCRIBED = 24 * 1024
"""Bytes of JSON the workflows' part of a server's announcement takes at most."""


def served_functions(workflows: Mapping[str, Any]) -> dict[str, Served]:
    """Each of ``workflows`` checked and described (see :func:`_served`), their description
    within :data:`MAX_DESCRIBED` (``ValueError`` beyond)."""
    served = _served(workflows)
    described = len(msgspec.json.encode([w.described for w in served.values()]))
    if described > MAX_DESCRIBED:
        raise ValueError(
            f"the workflows take {described} bytes to describe in the announcement; at most "
            f"{MAX_DESCRIBED}: serve fewer, or with shorter docstrings and annotations"
        )
    return served
