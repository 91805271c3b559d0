"""adapter_treserva settings (environment prefix ``ADAPTER_TRESERVA_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.messaging import sandbox_secrets
from services.messaging.envelope import System
from services.messaging.read_back_store import ConfirmationMode
from services.messaging.settings import (
    SANDBOX_TAKECARE_KEY_HASH,
    SANDBOX_TRESERVA_KEY,
    SANDBOX_TRESERVA_KEY_HASH,
)
from services.messaging.source_keys import SourceKeySettings

SANDBOX_TRESERVA_TOKEN = sandbox_secrets.TRESERVA_TOKEN
SANDBOX_INTAKE_TOKEN = SANDBOX_TRESERVA_KEY  # Treserva's sandbox key (its hash is the default)


class AdapterTreservaSettings(SourceKeySettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTER_TRESERVA_", extra="ignore")

    SOURCE: ClassVar[System] = System.TRESERVA
    SERVICE: ClassVar[str] = "adapter_treserva"
    SECRETS: ClassVar[tuple[str, ...]] = (*SourceKeySettings.SECRETS, "treserva_token")
    URLS: ClassVar[tuple[str, ...]] = ("treserva_url",)  # Treserva's API: https, not sandbox

    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/adapter_treserva.db"
    treserva_url: str = "http://127.0.0.1:8101"  # Treserva's API, for deliveries to it
    treserva_token: str = SANDBOX_TRESERVA_TOKEN  # the broker's credential toward Treserva
    # how Treserva confirms a delivered record: it pushes a receipt, the adapter reads the
    # record back from Treserva's API, or both (whichever comes first)
    treserva_confirmation: ConfirmationMode = ConfirmationMode.RECEIPT
    # Treserva's credential (its events and receipts): SHA-256 hashes of its 1–2 active keys
    intake_key_hashes: list[str] = Field(default_factory=lambda: [SANDBOX_TRESERVA_KEY_HASH])
    peer_key_hashes: dict[System, list[str]] = Field(
        default_factory=lambda: {System.TAKECARE: [SANDBOX_TAKECARE_KEY_HASH]}
    )
    request_timeout_s: float = 10.0
    max_body_bytes: int = 512 * 1024
