"""The adapters' sandbox API keys, a TakeCare admission fixture and the time the adapters run at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


TAKECARE_KEY = "sandbox-takecare-key"


TRESERVA_KEY = "sandbox-treserva-key"


ADMISSION = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
