"""Router settings (environment prefix ``ROUTER_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic_settings import SettingsConfigDict

from services.messaging.settings import ServiceSettings
from services.router.circuit import CircuitPolicy
from services.router.domain import FamilyPolicy, RetryPolicy, default_policies

SANDBOX_OPS_TOKEN = "sandbox-ops-token"


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///var/router.db"
    ops_token: str = SANDBOX_OPS_TOKEN
    admission_confirmation_deadline_s: float = 15 * 60
    confirmation_deadline_s: float = 15 * 60  # every other family
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_attempts: int = 10
    max_age_s: float = 24 * 3600  # not retried after this: dead letter + alert, a person acts
    attempt_timeout_s: float = 60.0
    tick_s: float = 0.1
    circuit_failure_threshold: int = 5  # transient failures in a row that open a circuit
    circuit_open_s: float = 5.0  # first open period; doubled per failed probe
    circuit_max_open_s: float = 30.0
    # one webhook POST; kept below attempt_timeout_s by the service (see webhook_timeout)
    webhook_timeout_s: float = 10.0

    def sandbox_secrets(self) -> dict[str, str]:
        return {**super().sandbox_secrets(), "ops_token": SANDBOX_OPS_TOKEN}

    def webhook_timeout(self) -> float:
        """A POST must give up before the router counts its attempt as unanswered."""
        return min(self.webhook_timeout_s, 0.8 * self.attempt_timeout_s)

    def circuit(self) -> CircuitPolicy:
        return CircuitPolicy(
            self.circuit_failure_threshold, self.circuit_open_s, self.circuit_max_open_s
        )

    def policies(self) -> dict[str, FamilyPolicy]:
        return default_policies(
            admission_confirmation_deadline=timedelta(
                seconds=self.admission_confirmation_deadline_s
            ),
            confirmation_deadline=timedelta(seconds=self.confirmation_deadline_s),
            retry=RetryPolicy(
                self.retry_base_s, self.retry_cap_s, self.max_attempts, self.max_age_s
            ),
        )
