"""Collecting an adapter's family modules: every module in its ``families`` package that
defines ``INBOUND`` (an :class:`InboundFamily`) or ``OUTBOUND`` (an :class:`OutboundFamily`).
A new family is a new module; nothing else is edited to register it."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from services.messaging.native import InboundFamily, OutboundFamily


def _modules(package: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name)
    ]


def inbound(package: ModuleType) -> tuple[InboundFamily[Any], ...]:
    found = [getattr(m, "INBOUND", None) for m in _modules(package)]
    return tuple(f for f in found if isinstance(f, InboundFamily))


def outbound(package: ModuleType) -> tuple[OutboundFamily, ...]:
    found = [getattr(m, "OUTBOUND", None) for m in _modules(package)]
    return tuple(f for f in found if isinstance(f, OutboundFamily))
