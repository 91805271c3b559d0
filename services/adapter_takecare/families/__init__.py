"""TakeCare's message families, one module each: what TakeCare pushes (a module's ``INBOUND``),
what the broker delivers to TakeCare (its ``OUTBOUND``), and TakeCare's receipts (``receipt``).
Modules are found by :mod:`services.messaging.family_modules`."""

from __future__ import annotations

import sys
from typing import Any

from services.messaging.family_modules import inbound, outbound
from services.messaging.native import InboundFamily, OutboundFamily

INBOUND: tuple[InboundFamily[Any], ...] = inbound(sys.modules[__name__])
OUTBOUND: tuple[OutboundFamily, ...] = outbound(sys.modules[__name__])
