"""Settings base class shared by every service.

Configuration is read only here (never ``os.environ`` elsewhere). Each service subclasses
:class:`ServiceSettings` with its own environment prefix. Outside the sandbox the settings
refuse the well-known sandbox secrets, so a production deployment cannot start on them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SANDBOX_PSEUDONYM_KEY = "sandbox-pseudonym-key-not-for-production"

Environment = Literal["sandbox", "test", "production"]


class DefaultSecretError(ValueError):
    """A sandbox secret was left in place outside the sandbox."""


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses add their own and set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Environment = "sandbox"
    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "sqlite+aiosqlite:///var/carebridge.db"
    pseudonym_key: str = SANDBOX_PSEUDONYM_KEY
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    topic_partitions: int = 3
    # After the broker lost its data (a Tansu restart), re-publish what was published within
    # this window; consumers are idempotent, so more is only slower, never wrong.
    replay_window_s: float = 24 * 3600
    broker_watch_s: float = 2.0

    def sandbox_secrets(self) -> dict[str, str]:
        """Field name → sandbox default for every secret. Subclasses extend it."""
        return {"pseudonym_key": SANDBOX_PSEUDONYM_KEY}

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            left = [
                name
                for name, default in self.sandbox_secrets().items()
                if getattr(self, name) == default
            ]
            if left:
                raise DefaultSecretError(
                    f"sandbox secrets must be replaced outside the sandbox: {', '.join(left)}"
                )
        return self
