"""adapter_takecare settings (environment prefix ``ADAPTER_TAKECARE_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.messaging import sandbox_secrets
from services.messaging.envelope import System
from services.messaging.read_back_store import ConfirmationMode
from services.messaging.settings import (
    SANDBOX_TAKECARE_KEY,
    SANDBOX_TAKECARE_KEY_HASH,
    SANDBOX_TRESERVA_KEY_HASH,
)
from services.messaging.source_keys import SourceKeySettings

SANDBOX_INTAKE_TOKEN = SANDBOX_TAKECARE_KEY  # TakeCare's sandbox key (its hash is the default)
SANDBOX_TAKECARE_TOKEN = sandbox_secrets.TAKECARE_TOKEN
SANDBOX_PRIMARY_CARE_TOKEN = sandbox_secrets.PRIMARY_CARE_TOKEN


class AdapterTakeCareSettings(SourceKeySettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTER_TAKECARE_", extra="ignore")

    SOURCE: ClassVar[System] = System.TAKECARE
    SERVICE: ClassVar[str] = "adapter_takecare"
    SECRETS: ClassVar[tuple[str, ...]] = (
        *SourceKeySettings.SECRETS,
        *("takecare_token", "primary_care_token"),
    )
    URLS: ClassVar[tuple[str, ...]] = ("takecare_url", "primary_care_url")  # https, not sandbox
    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/adapter_takecare.db"
    # TakeCare's credential toward the broker: SHA-256 hashes of its 1–2 active keys
    intake_key_hashes: list[str] = Field(default_factory=lambda: [SANDBOX_TAKECARE_KEY_HASH])
    peer_key_hashes: dict[System, list[str]] = Field(
        default_factory=lambda: {System.TRESERVA: [SANDBOX_TRESERVA_KEY_HASH]}
    )
    takecare_url: str = "http://127.0.0.1:8102"  # TakeCare's API, for deliveries to it
    takecare_token: str = SANDBOX_TAKECARE_TOKEN  # the broker's credential toward TakeCare
    primary_care_url: str = "http://127.0.0.1:8102"  # FHIR $process-message of primary care
    primary_care_token: str = SANDBOX_PRIMARY_CARE_TOKEN
    # how each destination confirms a delivered record: it pushes a receipt, the adapter
    # reads the record back from its API, or both (whichever comes first)
    takecare_confirmation: ConfirmationMode = ConfirmationMode.RECEIPT
    primary_care_confirmation: ConfirmationMode = ConfirmationMode.RECEIPT
    request_timeout_s: float = 10.0
    max_body_bytes: int = 512 * 1024  # a medication list of a few hundred lines fits
