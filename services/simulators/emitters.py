"""Building a simulator's own events from the sample modules, by family name. Sample
functions are named as ``module:function`` and imported when first used."""

from __future__ import annotations

import importlib
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.simulators.journal import EmitRequest

Emit = Callable[[EmitRequest], Awaitable[list[dict[str, Any]]]]
Sample = Callable[..., dict[str, Any]]


def sample_function(target: str) -> Sample:
    module, _, name = target.partition(":")
    function: Sample = getattr(importlib.import_module(module), name)
    return function


def build(
    table: dict[str, tuple[str, str]], request: EmitRequest, rng: random.Random
) -> tuple[str, list[dict[str, Any]]]:
    """(adapter route, events) for ``request``; LookupError for a family not offered."""
    if request.family not in table:
        raise LookupError(f"cannot emit {request.family!r}; try one of {', '.join(table)}")
    route, target = table[request.family]
    sample = sample_function(target)
    now = datetime.now().astimezone()
    return route, [sample(rng, now=now, **request.options) for _ in range(request.count)]
