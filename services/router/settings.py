"""Router settings (environment prefix ``ROUTER_``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.messaging import sandbox_secrets
from services.messaging.families import FAMILIES
from services.messaging.settings import ServiceSettings
from services.router.alerting.events import Severity
from services.router.alerting.incidents import ReminderPolicy
from services.router.alerting.silence import SilenceRule
from services.router.alerting.unit_directory import SANDBOX_PATH as SANDBOX_UNIT_DIRECTORY
from services.router.audit.checkpoint_sinks import CheckpointSink, FileSink, syslog_sink
from services.router.audit.checkpoints import (
    CheckpointSigner,
    sandbox_checkpoint_key,
    trusted_keys,
)
from services.router.ops.api_clients import ApiClient, ApiClients
from services.router.ops.console.accounts import SANDBOX_USERS, ConsoleUser, Role
from services.router.ops.oidc.claims import DEFAULT_ROLES, ClaimRules
from services.router.routing.circuit import CircuitPolicy
from services.router.routing.domain import FamilyPolicy, RetryPolicy, default_policies
from services.router.statistics.payment import GOTLAND, MunicipalityDirectory
from services.router.statistics.payment_clock import PaymentAgreement, PaymentAgreements
from services.router.subscriptions.endpoints import EndpointPolicy, check_pattern

SANDBOX_OPS_TOKEN = sandbox_secrets.OPS_TOKEN
SANDBOX_CONSOLE_SECRET = sandbox_secrets.CONSOLE_SECRET


class FamilyTerms(BaseModel):
    """What one message family overrides of the router-wide retry and deadline settings."""

    model_config = ConfigDict(extra="forbid")

    confirmation_deadline_s: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)
    max_age_s: float | None = Field(default=None, gt=0)
    retry_base_s: float | None = Field(default=None, gt=0)
    retry_cap_s: float | None = Field(default=None, gt=0)


# An admission notice is the one a missing delivery hurts most (home care must plan before
# the patient comes home): more attempts. A SIP or medication list stays worth delivering
# for as long as the SIP's three-day window, so it may be retried for longer.
DEFAULT_FAMILY_TERMS: dict[str, FamilyTerms] = {
    "admission-notice": FamilyTerms(max_attempts=15),
    "medication-list": FamilyTerms(max_age_s=72 * 3600),
    "sip-update": FamilyTerms(max_age_s=72 * 3600),
}


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")
    SERVICE: ClassVar[str] = "router"
    SECRETS: ClassVar[tuple[str, ...]] = (
        *ServiceSettings.SECRETS,
        *("ops_token", "console_secret", "alert_webhook_secret", "alert_smtp_password"),
        "oidc_client_secret",
    )
    KEYS: ClassVar[tuple[str, ...]] = (
        *ServiceSettings.KEYS,
        *("ops_token", "console_secret", "alert_webhook_secret"),
    )
    URLS: ClassVar[tuple[str, ...]] = ("alert_webhook_url", "oidc_issuer", "oidc_redirect_url")

    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///var/router.db"
    ops_token: str = SANDBOX_OPS_TOKEN  # the API client "ops", role admin (the ops CLI's)
    # more API clients, each with a role and 1-2 key hashes (services.router.ops.api_clients)
    api_clients: dict[str, ApiClient] = Field(default_factory=dict)
    max_body_bytes: int = 256 * 1024  # the JSON API's bodies (a replay of 1000 ids is ~40 KiB)
    instance: str = "router"  # unique per replica when several routers share a database
    admission_confirmation_deadline_s: float = 15 * 60
    confirmation_deadline_s: float = 15 * 60  # every other family
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_attempts: int = 10
    max_age_s: float = 24 * 3600  # not retried after this: dead letter + alert, a person acts
    attempt_timeout_s: float = 60.0
    # deliveries in flight per destination at most (0: no limit): a drain after an outage
    # queues no more on Kafka than the adapter answers within attempt_timeout_s
    max_in_flight: int = Field(default=200, ge=0)
    # retries, expired attempts and reopened circuits are dispatched on the tick; new
    # deliveries and a patient's next one go out with the batch that made them due
    tick_s: float = 0.25
    # the watchdog's checks (deadlines measured in minutes to days) need not run ten times a
    # second: every tick they cost about a tenth of a core on an idle router
    checks_s: float = 1.0
    # replicas on PostgreSQL: the one holding the watchdog's lease does the tick's work, and
    # another takes it over this long after the holder stopped renewing it (it dies)
    watchdog_lease_s: float = Field(default=5.0, gt=0)
    circuit_failure_threshold: int = 5  # transient failures in a row that open a circuit
    circuit_open_s: float = 5.0  # first open period; doubled per failed probe
    circuit_max_open_s: float = 30.0
    # per family name (see services.messaging.families), as JSON in ROUTER_FAMILY_TERMS, e.g.
    # {"admission-notice": {"max_attempts": 20, "confirmation_deadline_s": 600}}
    family_terms: dict[str, FamilyTerms] = Field(default_factory=lambda: dict(DEFAULT_FAMILY_TERMS))

    # silent sources (services.router.alerting.silence), as JSON in ROUTER_SILENCE_RULES; by default
    # TakeCare's admission trigger: something expected every 4 h between 07 and 22
    silence_rules: list[SilenceRule] = Field(
        default_factory=lambda: [SilenceRule(source="takecare", event_code="admission-notice")]
    )
    silence_check_s: float = 60.0
    sip_in_working_days: bool = False  # a regional agreement may count the SIP's 3 days so
    # The payment clock (betalningsansvar): the municipality of a Treserva delivery that names
    # no receiving unit (routed before addressing by unit, issue 20; one addressed to a unit
    # is charged to that unit's municipality), and each municipality's agreement (code →
    # {"days": 3, "kind": "calendar" | "working"}); a municipality without one follows
    # payment_default_agreement (the law: 3 calendar days)
    payment_municipality: str = Field(default=GOTLAND, pattern=r"^[0-9]{4}$")
    payment_agreements: dict[str, PaymentAgreement] = Field(default_factory=dict)
    payment_default_agreement: PaymentAgreement = PaymentAgreement()
    destination_down_after_s: float = 10 * 60  # a circuit open this long raises an incident
    reminder_warning_s: float = 2 * 3600  # quiet interval of an open incident, by severity
    reminder_critical_s: float = 30 * 60

    @field_validator("family_terms")
    @classmethod
    def _known_families(cls, terms: dict[str, FamilyTerms]) -> dict[str, FamilyTerms]:
        unknown = sorted(set(terms) - {f.name for f in FAMILIES})
        if unknown:
            raise ValueError(f"unknown message families: {', '.join(unknown)}")
        return terms

    @field_validator("payment_agreements")
    @classmethod
    def _municipality_codes(
        cls, agreements: dict[str, PaymentAgreement]
    ) -> dict[str, PaymentAgreement]:
        bad = sorted(code for code in agreements if not (len(code) == 4 and code.isdigit()))
        if bad:
            raise ValueError(f"not four-digit municipality codes: {', '.join(bad)}")
        return agreements

    # The operations console (services/router/ops/console): who may log in, as JSON in
    # ROUTER_CONSOLE_USERS ([{"name", "role", "password_hash"}], hashes from
    # `python -m services.router.ops.cli hash-password`), the key the stored session ids are
    # hashed with (rotating it ends every session), how long a session lasts at most and
    # idle, and when wrong passwords are throttled (console/sessions.py, console/throttle.py).
    # Cookies are Secure outside the sandbox unless said otherwise.
    # Outside the sandbox there is no default account: with none configured, the router
    # creates one admin at first start and shows its password once (console/identity.py).
    console_users: list[ConsoleUser] = Field(default_factory=lambda: list(SANDBOX_USERS))
    console_secret: str = Field(default=SANDBOX_CONSOLE_SECRET, min_length=16, repr=False)
    console_session_s: float = Field(default=8 * 3600, gt=0)  # absolute, however busy
    console_idle_s: float = Field(default=20 * 60, gt=0)
    console_secure_cookie: bool | None = None
    # failed log-ins within the window before the next waits (per typed name, per address)
    console_login_failures_per_account: int = Field(default=5, ge=1)
    console_login_failures_per_address: int = Field(default=20, ge=1)
    console_login_window_s: float = Field(default=15 * 60, gt=0)

    # People log in through the region's identity provider (OpenID Connect), which does the
    # SITHS or Freja eID log-in: the console is its relying party (authorization code with
    # PKCE) and the ops API takes its access tokens (JWT, checked against its JWKS). Off until
    # ROUTER_OIDC_ISSUER is set. Local password accounts (console_users) are for the sandbox
    # only: outside it, with or without OIDC, nobody logs in with a password and no first-run
    # account is made (see docs/operations.md, "Log-in through the region's identity provider").
    oidc_issuer: str | None = None  # https://idp.region.example/oidc
    oidc_client_id: str | None = None
    # none: a public client (PKCE alone); set: client_secret_basic at the token endpoint
    oidc_client_secret: str | None = Field(default=None, repr=False)
    oidc_redirect_url: str | None = None  # https://<router>/console/oidc/callback
    # offline_access: a refresh token, with which a console session is checked again
    oidc_scopes: str = "openid profile offline_access"
    oidc_name_claim: str = "name"
    oidc_hsa_claim: str = "hsa_id"
    oidc_role_claim: str = "roles"
    # the role claim's values, as JSON in ROUTER_OIDC_ROLES: {"<value>": "viewer|operator|admin"}
    oidc_roles: dict[str, Role] = Field(default_factory=lambda: dict(DEFAULT_ROLES))
    # the ops API's audience in the provider's access tokens; unset: the API takes API keys only
    oidc_api_audience: str | None = None
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300)
    # A console session from the provider is checked with it again (refresh-token grant, the
    # fresh ID token checked as at log-in) at most this often, on a console request; it is
    # revoked if the provider refuses or the role changed. While the provider does not
    # answer, the session stands this long past its last good check, then ends (fail closed).
    oidc_session_recheck_s: float = Field(default=5 * 60, gt=0)
    oidc_session_grace_s: float = Field(default=10 * 60, ge=0)
    # the CA that signed the provider's certificate (PEM), e.g. the region's own; unset: the
    # system's trusted CAs. Verification is never off.
    oidc_ca_file: str | None = None

    # Patientdatalagen / HSLF-FS 2016:40: the access log is kept at least five years. Nothing
    # in the broker deletes entries; an archive job must keep every entry younger than this.
    access_log_retention_days: int = Field(default=5 * 365 + 2, ge=5 * 365 + 2)
    # Signed checkpoints of the access log's head, kept outside the database
    # (services/router/audit/checkpoints.py): the router's own Ed25519 key, "<key id>:<base64
    # of 32 bytes>" (`python -m services.router.ops.cli new-checkpoint-key`; not the record
    # signing key), how often (only when the head moved), and where: a JSON-lines file
    # and/or a syslog collector, udp://host:514 or tcp://host:601. Outside the sandbox the
    # key must be set and at least one target too; in the sandbox both targets may be unset.
    audit_checkpoint_key: str | None = Field(default=None, repr=False)
    audit_checkpoint_every_s: float = Field(default=15 * 60, gt=0)
    audit_checkpoint_file: str | None = None
    audit_checkpoint_syslog: str | None = None
    # after a rotation, the earlier keys' public halves ("<key id>:<base64>", as JSON in
    # ROUTER_AUDIT_CHECKPOINT_PUBLIC_KEYS) so that older checkpoints still verify
    audit_checkpoint_public_keys: list[str] = Field(default_factory=list)

    # a finished message's payload is pruned this long after (services.router.audit.retention)
    payload_retention_days: float = Field(default=90, gt=0)
    payload_prune_every_s: float = Field(default=3600, gt=0)

    # one webhook POST; kept below attempt_timeout_s by the service (see webhook_timeout)
    webhook_timeout_s: float = 10.0

    # Where webhook subscriptions may point (services/router/subscriptions/endpoints.py),
    # checked at registration and again before every POST. The hosts, as JSON in
    # ROUTER_SUBSCRIPTION_ALLOWED_HOSTS: names or "*.suffix" patterns, e.g.
    # ["hooks.region.se", "*.plattform.example.se"]. Outside the sandbox an empty list
    # allows no host: no subscription can be registered until the list is set (fail closed).
    # In the sandbox an empty list allows any host.
    subscription_allowed_hosts: list[str] = Field(default_factory=list)
    # The sandbox only (refused elsewhere): callbacks may resolve to loopback and private
    # addresses, as the sandbox's subscriber simulator on 127.0.0.1 does.
    subscription_allow_private_addresses: bool = False

    @field_validator("subscription_allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        try:
            return [check_pattern(h) for h in hosts]
        except ValueError as exc:
            raise ValueError(f"{cls.env('subscription_allowed_hosts')}: {exc}") from None

    # Alert notification channels (see services/router/alerting/notifications.py); each is off until
    # configured. The webhook secret has no default: a webhook needs one of its own.
    alert_webhook_url: str | None = None
    alert_webhook_secret: str | None = Field(default=None, min_length=16, repr=False)
    alert_smtp_host: str | None = None
    alert_smtp_port: int = 587
    alert_smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    alert_smtp_username: str | None = None
    alert_smtp_password: str | None = Field(default=None, repr=False)
    alert_email_from: str = "carebridge@example.se"
    # as JSON in ROUTER_ALERT_OPS_RECIPIENTS, e.g. ["drift@example.se"]
    alert_ops_recipients: list[str] = Field(default_factory=list)
    alert_fallback_notices: bool = True  # email the receiving unit (needs SMTP)
    # at most one fallback email per recipient per interval, listing every waiting notice
    # under its own case reference; more than digest_over of them: a digest, a line each
    alert_fallback_interval_s: float = Field(default=15 * 60, ge=0)
    alert_fallback_digest_over: int = Field(default=10, ge=1)
    # The unit directory file (services.router.alerting.unit_directory): it seeds the
    # care_unit table when that is empty and names the region, its time zone, switchboard and
    # default receivers. Unset: the sandbox's fictive region Halland (three municipalities,
    # contracts/units/halland.json); outside the sandbox there is no default: the region's own
    # file must be named, and one marked "sandbox" is refused at start-up.
    alert_unit_directory: str | None = None
    notification_max_attempts: int = Field(default=8, ge=1)
    notification_retry_base_s: float = Field(default=5.0, gt=0)
    notification_retry_cap_s: float = Field(default=600.0, gt=0)
    notification_timeout_s: float = Field(default=10.0, gt=0)
    notification_poll_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _api_clients_distinct(self) -> RouterSettings:
        ApiClients.build(self.api_clients, self.ops_token)  # raises ValueError on a clash
        return self

    @model_validator(mode="after")
    def _no_default_accounts_outside_the_sandbox(self) -> RouterSettings:
        if self.environment != "sandbox" and "console_users" not in self.model_fields_set:
            self.console_users = []
        return self

    @model_validator(mode="after")
    def _checkpoint_settings(self) -> RouterSettings:
        # an empty variable (compose's ${X:-}) is unset, not a path or a target
        self.audit_checkpoint_file = self.audit_checkpoint_file or None
        self.audit_checkpoint_syslog = self.audit_checkpoint_syslog or None
        try:
            self.checkpoint_signer()  # a malformed key is named at start-up
        except ValueError as exc:
            raise ValueError(f"{self.env('audit_checkpoint_key')}: {exc}") from None
        try:
            self.checkpoint_trusted()
        except ValueError as exc:
            raise ValueError(f"{self.env('audit_checkpoint_public_keys')}: {exc}") from None
        if self.audit_checkpoint_syslog is not None:
            try:
                syslog_sink(self.audit_checkpoint_syslog)
            except ValueError as exc:
                raise ValueError(f"{self.env('audit_checkpoint_syslog')}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> RouterSettings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_redirect_url):
            raise ValueError("oidc_issuer needs oidc_client_id and oidc_redirect_url")
        if self.oidc_api_audience and not self.oidc_issuer:
            raise ValueError("oidc_api_audience needs oidc_issuer (whose tokens to take)")
        return self

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> RouterSettings:
        if self.alert_webhook_url and not self.alert_webhook_secret:
            raise ValueError("alert_webhook_url needs alert_webhook_secret to sign with")
        if self.alert_webhook_url and not self.alert_webhook_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("alert_webhook_url must be an http(s) URL")
        return self

    def sandbox_key_hashes(self) -> dict[str, Iterable[str]]:
        return {
            **super().sandbox_key_hashes(),
            "api_clients": [h for client in self.api_clients.values() for h in client.key_hashes],
        }

    def refusals(self) -> list[str]:
        refusals = super().refusals()
        # (an unset list is the sandbox's accounts until _no_default_accounts clears it)
        if "console_users" in self.model_fields_set and self.console_users:
            refusals.append(
                f"{self.env('console_users')}: local password accounts (the sandbox console "
                f"accounts among them) are for the sandbox only; people log in through the "
                f"region's identity provider ({self.env('oidc_issuer')})"
            )
        if self.subscription_allow_private_addresses:
            refusals.append(
                f"{self.env('subscription_allow_private_addresses')}: webhooks to loopback or "
                "private addresses are for the sandbox only"
            )
        refusals += self._checkpoint_refusals()
        if self.unit_directory_path() is None:
            refusals.append(
                f"{self.env('alert_unit_directory')}: outside the sandbox the router has no "
                "default unit directory; name the region's own file (the format of "
                "contracts/units/<region>.json): every notice is addressed to its units"
            )
        if self.alert_smtp_security == "none":
            refusals.append(
                f"{self.env('alert_smtp_security')}: 'none' (mail in clear) is for the sandbox "
                "only; use starttls or tls"
            )
        return refusals

    def _checkpoint_refusals(self) -> list[str]:
        refusals = []
        key = self.audit_checkpoint_key
        if key is None or key == sandbox_checkpoint_key():
            refusals.append(
                f"{self.env('audit_checkpoint_key')}: set the router's own access-log "
                "checkpoint key outside the sandbox"
            )
        elif key == self.record_signing_key:
            refusals.append(
                f"{self.env('audit_checkpoint_key')}: a key of its own, not "
                f"{self.env('record_signing_key')}"
            )
        if not self.checkpoint_sinks():
            refusals.append(
                f"{self.env('audit_checkpoint_file')}, {self.env('audit_checkpoint_syslog')}: "
                "outside the sandbox signed access-log checkpoints need a target outside the "
                "database; set one or both"
            )
        return refusals

    def unit_directory_path(self) -> Path | None:
        """The unit directory file: the one set, else the sandbox's (Halland) in the sandbox;
        None outside it (refused: production never routes on a sandbox directory)."""
        if self.alert_unit_directory:  # an empty variable (compose's ${X:-}) is unset
            return Path(self.alert_unit_directory)
        return SANDBOX_UNIT_DIRECTORY if self.in_sandbox else None

    def checkpoint_signer(self) -> CheckpointSigner:
        return CheckpointSigner.from_setting(self.audit_checkpoint_key or sandbox_checkpoint_key())

    def checkpoint_trusted(self) -> dict[str, Ed25519PublicKey]:
        """Every key a checkpoint may be signed with: the current one and earlier ones."""
        return {
            **trusted_keys(self.audit_checkpoint_public_keys),
            **self.checkpoint_signer().trusted(),
        }

    def checkpoint_file(self) -> FileSink | None:
        path = self.audit_checkpoint_file  # "" is unset (the refusals may run before the
        return FileSink(Path(path)) if path else None  # validator that clears it)

    def checkpoint_sinks(self) -> list[CheckpointSink]:
        sinks: list[CheckpointSink] = []
        if (file := self.checkpoint_file()) is not None:
            sinks.append(file)
        if self.audit_checkpoint_syslog:
            sinks.append(syslog_sink(self.audit_checkpoint_syslog))
        return sinks

    @property
    def password_login(self) -> bool:
        """Local password accounts log in only in the sandbox (first-run admin included)."""
        return self.in_sandbox

    def oidc_rules(self) -> ClaimRules:
        return ClaimRules(
            name_claim=self.oidc_name_claim,
            hsa_claim=self.oidc_hsa_claim,
            role_claim=self.oidc_role_claim,
            roles=dict(self.oidc_roles),
        )

    def secure_cookie(self) -> bool:
        if self.console_secure_cookie is not None:
            return self.console_secure_cookie
        return not self.in_sandbox

    def payment_agreements_of(self) -> PaymentAgreements:
        return PaymentAgreements(dict(self.payment_agreements), self.payment_default_agreement)

    def municipality_directory(self) -> MunicipalityDirectory:
        """The municipality of a municipal destination's deliveries that name no unit."""
        return MunicipalityDirectory({"treserva": self.payment_municipality})

    def endpoint_policy(self) -> EndpointPolicy:
        """Where webhook subscriptions may point: https only, and an empty allowlist allows
        nothing, outside the sandbox."""
        return EndpointPolicy(
            require_https=not self.in_sandbox,
            allow_private=self.subscription_allow_private_addresses,
            allowed_hosts=tuple(self.subscription_allowed_hosts),
            empty_allows_all=self.in_sandbox,
        )

    def webhook_timeout(self) -> float:
        """A POST must give up before the router counts its attempt as unanswered."""
        return min(self.webhook_timeout_s, 0.8 * self.attempt_timeout_s)

    def alert_hold(self) -> timedelta:
        """After a jump of the wall clock, new alerts wait one confirmation interval: the
        longest of the families' (services.router.routing.clock_jumps)."""
        return max(p.confirmation_deadline for p in self.policies().values())

    def circuit(self) -> CircuitPolicy:
        return CircuitPolicy(
            self.circuit_failure_threshold, self.circuit_open_s, self.circuit_max_open_s
        )

    def policies(self) -> dict[str, FamilyPolicy]:
        """Per event code: the router-wide values with each family's terms laid over them."""
        policies = default_policies(
            admission_confirmation_deadline=timedelta(
                seconds=self.admission_confirmation_deadline_s
            ),
            confirmation_deadline=timedelta(seconds=self.confirmation_deadline_s),
            retry=RetryPolicy(
                self.retry_base_s, self.retry_cap_s, self.max_attempts, self.max_age_s
            ),
        )
        for family in FAMILIES:
            terms = self.family_terms.get(family.name)
            if terms is None:
                continue
            for event in family.events:
                base = policies[event.value]
                policies[event.value] = FamilyPolicy(
                    confirmation_deadline=(
                        timedelta(seconds=terms.confirmation_deadline_s)
                        if terms.confirmation_deadline_s is not None
                        else base.confirmation_deadline
                    ),
                    retry=RetryPolicy(
                        terms.retry_base_s or base.retry.base_s,
                        terms.retry_cap_s or base.retry.cap_s,
                        terms.max_attempts or base.retry.max_attempts,
                        terms.max_age_s or base.retry.max_age_s,
                    ),
                )
        return policies

    def reminder_policy(self) -> ReminderPolicy:
        return ReminderPolicy(
            {
                Severity.INFO: None,
                Severity.WARNING: timedelta(seconds=self.reminder_warning_s),
                Severity.CRITICAL: timedelta(seconds=self.reminder_critical_s),
            }
        )
