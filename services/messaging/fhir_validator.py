"""The FHIR side of a ``$validate`` verdict: the project's FHIR R4 validator
(tools/fhir-validator, HAPI FHIR on the JVM, fully offline) asked over HTTP on loopback,
behind a Protocol with a Fake beside it.

The validator answers ``POST /validate[?profile=<canonical>]`` with an OperationOutcome;
:func:`verdict_from_outcome` reads it into a :class:`FhirVerdict` (pure, no I/O). The process
that serves it is started by sandbox/fhir_validator_process.py (tests, ``make contracts``) or
by the deployment beside an adapter.

Exceptions (a caller decides by class, never by text)::

    FhirValidatorError
     └── FhirValidatorUnavailable   connection refused, timeout, 5xx, an answer that is no
                                    OperationOutcome: no verdict, the message is not judged
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

Severity = Literal["fatal", "error", "warning", "information"]
_SEVERITIES: tuple[Severity, ...] = ("fatal", "error", "warning", "information")


class FhirValidatorError(Exception):
    """Anything that kept the validator from judging a resource."""


class FhirValidatorUnavailable(FhirValidatorError):
    """The validator did not answer with an OperationOutcome (down, slow, broken)."""


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One ``OperationOutcome.issue``: where (a FHIRPath ``expression``) and what."""

    severity: Severity
    code: str
    message: str
    expression: str | None = None
    location: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


@dataclass(frozen=True, slots=True)
class FhirVerdict:
    """The validator's answer: the OperationOutcome as sent, and its issues read."""

    outcome: dict[str, Any]
    issues: tuple[ValidationIssue, ...] = field(default=())

    @property
    def errors(self) -> tuple[ValidationIssue, ...]:
        return tuple(i for i in self.issues if i.is_error)

    @property
    def warnings(self) -> tuple[ValidationIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def valid(self) -> bool:
        return not self.errors


def verdict_from_outcome(outcome: Mapping[str, Any]) -> FhirVerdict:
    """Reads an OperationOutcome; raises FhirValidatorUnavailable for anything else. The
    single informational "No issues detected" issue is kept in ``outcome``, not in ``issues``."""
    if outcome.get("resourceType") != "OperationOutcome" or not isinstance(
        outcome.get("issue"), list
    ):
        raise FhirValidatorUnavailable("the validator's answer is not an OperationOutcome")
    issues: list[ValidationIssue] = []
    for raw in outcome["issue"]:
        severity = raw.get("severity")
        if severity not in _SEVERITIES:
            raise FhirValidatorUnavailable(f"an issue of unknown severity {severity!r}")
        if raw.get("code") == "informational" and len(outcome["issue"]) == 1:
            continue
        expressions = raw.get("expression") or []
        locations = raw.get("location") or []
        issues.append(
            ValidationIssue(
                severity=severity,
                code=str(raw.get("code", "processing")),
                message=str(raw.get("diagnostics", "")),
                expression=expressions[0] if expressions else None,
                location=locations[0] if locations else None,
            )
        )
    return FhirVerdict(outcome=dict(outcome), issues=tuple(issues))


def outcome_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The OperationOutcome of one file of the validator's batch output (its ``issues``:
    severity, code, expression, location, message), as its server would answer it: the
    same issues, and one informational issue when there are none."""
    issues = [
        {
            "severity": row["severity"],
            "code": row.get("code") or "processing",
            "diagnostics": row.get("message") or "",
            **({"location": [row["location"]]} if row.get("location") else {}),
            **({"expression": [row["expression"]]} if row.get("expression") else {}),
        }
        for row in rows
    ]
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "No issues"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_issues(verdict: FhirVerdict) -> list[dict[str, Any]]:
    """The verdict's issues as OperationOutcome issues (without the lone informational one),
    to be put beside an OperationOutcome's own."""
    return [
        {
            "severity": i.severity,
            "code": i.code,
            "diagnostics": i.message,
            **({"location": [i.location]} if i.location else {}),
            **({"expression": [i.expression]} if i.expression else {}),
        }
        for i in verdict.issues
    ]


def error_set(verdict: FhirVerdict) -> frozenset[tuple[str, str | None, str]]:
    """What two verdicts must share to be the same: each error's severity, where and what."""
    return frozenset((i.severity, i.expression or i.location, i.message) for i in verdict.errors)


class FhirValidator(Protocol):
    async def validate(
        self, resource: Mapping[str, Any] | bytes, *, profile: str | None = None
    ) -> FhirVerdict: ...


class HttpFhirValidator:
    """The validator server's client. ``transport=`` is for tests (httpx.MockTransport)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def validate(
        self, resource: Mapping[str, Any] | bytes, *, profile: str | None = None
    ) -> FhirVerdict:
        params = {"profile": profile} if profile else None
        headers = {"Content-Type": "application/fhir+json"}
        try:
            if isinstance(resource, bytes):
                response = await self._client.post(
                    "/validate", content=resource, params=params, headers=headers
                )
            else:
                response = await self._client.post(
                    "/validate", json=dict(resource), params=params, headers=headers
                )
        except httpx.HTTPError as exc:
            raise FhirValidatorUnavailable(f"the validator did not answer: {exc!r}") from exc
        if response.status_code != 200:
            raise FhirValidatorUnavailable(f"the validator answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise FhirValidatorUnavailable("the validator's answer is not JSON") from exc
        if not isinstance(body, dict):
            raise FhirValidatorUnavailable("the validator's answer is not an OperationOutcome")
        return verdict_from_outcome(body)

    async def healthy(self) -> bool:
        try:
            response = await self._client.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpFhirValidator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class FakeFhirValidator:
    """In memory: every resource gets ``issues`` (none by default); ``unavailable`` makes it
    fail like a validator that is down. ``seen`` keeps what it was asked, in order."""

    def __init__(
        self, issues: tuple[ValidationIssue, ...] = (), *, unavailable: bool = False
    ) -> None:
        self.issues = issues
        self.unavailable = unavailable
        self.seen: list[tuple[Mapping[str, Any] | bytes, str | None]] = []

    async def validate(
        self, resource: Mapping[str, Any] | bytes, *, profile: str | None = None
    ) -> FhirVerdict:
        self.seen.append((resource, profile))
        if self.unavailable:
            raise FhirValidatorUnavailable("the fake validator is down")
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": i.severity,
                    "code": i.code,
                    "diagnostics": i.message,
                    **({"expression": [i.expression]} if i.expression else {}),
                }
                for i in self.issues
            ]
            or [{"severity": "information", "code": "informational", "diagnostics": "ok"}],
        }
        return FhirVerdict(outcome=outcome, issues=self.issues)
