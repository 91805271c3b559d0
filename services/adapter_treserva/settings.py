"""adapter_treserva settings (environment prefix ``ADAPTER_TRESERVA_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.messaging.settings import ServiceSettings

SANDBOX_TRESERVA_TOKEN = "sandbox-treserva-api-key"
SANDBOX_INTAKE_TOKEN = "sandbox-treserva-key"


class AdapterTreservaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTER_TRESERVA_", extra="ignore")

    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/adapter_treserva.db"
    treserva_url: str = "http://127.0.0.1:8101"  # Treserva's API, for deliveries to it
    treserva_token: str = SANDBOX_TRESERVA_TOKEN  # the broker's credential toward Treserva
    intake_token: str = SANDBOX_INTAKE_TOKEN  # Treserva's credential: its events and receipts
    request_timeout_s: float = 10.0
    max_body_bytes: int = 512 * 1024

    def sandbox_secrets(self) -> dict[str, str]:
        return {
            **super().sandbox_secrets(),
            "treserva_token": SANDBOX_TRESERVA_TOKEN,
            "intake_token": SANDBOX_INTAKE_TOKEN,
        }
