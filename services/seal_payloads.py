"""``python -m services.seal_payloads SERVICE``: seal, in place, the payload rows a service's
database still holds in clear (written before payloads were sealed at rest), then exit.

Outside the sandbox a service refuses to start while such rows exist (services.messaging.
sealing); run this with the service stopped and the service's own settings in the
environment (``ROUTER_DATABASE_URL``, ``ROUTER_PAYLOAD_KEYS``, …; SERVICE is ``router``,
``adapter_takecare`` or ``adapter_treserva``). It seals under the current payload key, in
batches of its own transactions, and may be run again: what is sealed already is left alone.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.db import make_engine, session_factory
from services.messaging.outbox import sealed_column
from services.messaging.sealing import SealedColumn, seal_batch
from services.messaging.settings import ServiceSettings
from services.messaging.startup import settings_or_exit
from services.router.audit.payload_keys import SEALED_COLUMNS
from services.router.settings import RouterSettings

SERVICES: dict[str, tuple[type[ServiceSettings], Sequence[SealedColumn]]] = {
    "router": (RouterSettings, SEALED_COLUMNS),
    "adapter_takecare": (AdapterTakeCareSettings, [sealed_column("adapter_takecare")]),
    "adapter_treserva": (AdapterTreservaSettings, [sealed_column("adapter_treserva")]),
}


async def seal(settings: ServiceSettings, columns: Sequence[SealedColumn]) -> dict[str, int]:
    """How many values of each column were sealed."""
    engine = make_engine(settings.database_url)
    keyring = settings.keyring()
    sessions = session_factory(engine, keyring=keyring)
    sealed: dict[str, int] = {}
    try:
        for column in columns:
            sealed[column.label] = 0
            while True:
                async with sessions.begin() as session:
                    done = await seal_batch(session, keyring, column)
                if not done:
                    break
                sealed[column.label] += done
    finally:
        await engine.dispose()
    return sealed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in SERVICES:
        print(f"usage: python -m services.seal_payloads {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    cls, columns = SERVICES[args[0]]
    for label, count in asyncio.run(seal(settings_or_exit(cls), columns)).items():
        print(f"{label}: {count} sealed", flush=True)  # counts only: never a value or the URL
    return 0


if __name__ == "__main__":
    sys.exit(main())
