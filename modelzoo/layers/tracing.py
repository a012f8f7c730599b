"""Helpers that keep models traceable by ``torch.fx``, ``torch.export`` and ``torch.compile``.

Input checks and small shape-dependent steps (padding an image to a multiple of a
stride, flattening an observation) read concrete sizes and branch on them. That
is fine in eager mode and under ``torch.export``/``torch.compile``, which see
real (possibly symbolic) sizes, but ``torch.fx.symbolic_trace`` passes
``Proxy`` objects that cannot be compared or iterated. ``graph_leaf`` marks such
a function as one opaque step of an FX graph: while tracing it records a call to
itself instead of running, and the traced ``GraphModule`` runs it for real, so a
traced model still checks its inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
import torch.fx

__all__ = ["graph_leaf", "is_fx_proxy", "is_tracing"]

F = TypeVar("F", bound=Callable[..., Any])


def is_tracing() -> bool:
    """True while ``torch.jit.trace``, ``torch.export`` or ``torch.compile`` captures a graph.

    FX symbolic tracing is not included: it does not run checks at all (see ``graph_leaf``).
    """
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _values(args: Iterable[Any]) -> Iterable[Any]:
    for value in args:
        if isinstance(value, (tuple, list)):
            yield from _values(value)
        elif isinstance(value, dict):
            yield from _values(value.values())
        else:
            yield value


def is_fx_proxy(*values: Any) -> bool:
    """Whether any of ``values`` (or of their items) is a ``torch.fx.Proxy``."""
    return any(isinstance(v, torch.fx.Proxy) for v in _values(values))


def graph_leaf(fn: F) -> F:
    """Make ``fn`` one opaque call in graphs made by ``torch.fx`` symbolic tracing.

    When any argument is an FX ``Proxy``, the call is recorded as a
    ``call_function`` node of ``fn`` and its ``Proxy`` result returned; otherwise
    ``fn`` runs as usual. ``torch.fx.wrap`` does the same but only for calls made
    through the globals of the module that wraps it; this works from any caller.
    The function must not change its arguments in place, and its result is opaque
    to the tracer (a tensor, a tuple of tensors, ``None``, ...).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in _values((args, kwargs)):
            if isinstance(value, torch.fx.Proxy):
                # The node calls the wrapper, the name importable from fn's module, so that a
                # traced GraphModule pickles; at run time it sees no proxies and runs fn.
                return value.tracer.create_proxy("call_function", wrapper, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
