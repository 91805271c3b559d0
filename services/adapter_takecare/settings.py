"""adapter_takecare settings (environment prefix ``ADAPTER_TAKECARE_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.messaging.settings import ServiceSettings

SANDBOX_INTAKE_TOKEN = "sandbox-takecare-key"


class AdapterTakeCareSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTER_TAKECARE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/adapter_takecare.db"
    intake_token: str = SANDBOX_INTAKE_TOKEN
    max_body_bytes: int = 64 * 1024

    def sandbox_secrets(self) -> dict[str, str]:
        return {**super().sandbox_secrets(), "intake_token": SANDBOX_INTAKE_TOKEN}
