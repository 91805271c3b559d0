"""adapter_takecare settings (environment prefix ``ADAPTER_TAKECARE_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.messaging.settings import ServiceSettings

SANDBOX_INTAKE_TOKEN = "sandbox-takecare-key"
SANDBOX_TAKECARE_TOKEN = "sandbox-takecare-api-key"
SANDBOX_PRIMARY_CARE_TOKEN = "sandbox-primary-care-api-key"


class AdapterTakeCareSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTER_TAKECARE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/adapter_takecare.db"
    intake_token: str = SANDBOX_INTAKE_TOKEN  # TakeCare's credential toward the broker
    takecare_url: str = "http://127.0.0.1:8102"  # TakeCare's API, for deliveries to it
    takecare_token: str = SANDBOX_TAKECARE_TOKEN  # the broker's credential toward TakeCare
    primary_care_url: str = "http://127.0.0.1:8102"  # FHIR $process-message of primary care
    primary_care_token: str = SANDBOX_PRIMARY_CARE_TOKEN
    request_timeout_s: float = 10.0
    max_body_bytes: int = 512 * 1024  # a medication list of a few hundred lines fits

    def sandbox_secrets(self) -> dict[str, str]:
        return {
            **super().sandbox_secrets(),
            "intake_token": SANDBOX_INTAKE_TOKEN,
            "takecare_token": SANDBOX_TAKECARE_TOKEN,
            "primary_care_token": SANDBOX_PRIMARY_CARE_TOKEN,
        }
