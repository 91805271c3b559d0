"""What every attack of ``make attack-probe`` (:mod:`sandbox.attack_probe`) is made of: the
stack's addresses and one HTTP client (:class:`Probe`), an attack (:class:`Attack`) and what
it observed (:class:`Observation`), the credentials the probe's stack publishes, and the
console's log-in as a browser does it."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from sandbox.scenario import Scenario
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.people import TEST_IDENTIFIERS
from sandbox.stack import Stack
from services.router.ops.console.accounts import SANDBOX_PASSWORDS

TAKECARE_KEY, TRESERVA_KEY, OPS_TOKEN = (
    "sandbox-takecare-key",
    "sandbox-treserva-key",
    "sandbox-ops-token",
)
VIEWER_KEY = "probe-viewer-key-0123456789"
METRICS_TOKEN = "probe-metrics-token-0123456789"  # noqa: S105 (the probe's own stack)
# Skatteverket's test personnummer (the simulators' people), and one with its check digit off
PATIENT = TEST_IDENTIFIERS[1]
WRONG_CHECK_DIGIT = PATIENT[:-1] + str((int(PATIENT[-1]) + 1) % 10)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Observation:
    status: str  # what came back, as the table shows it
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Attack:
    name: str
    expected: str
    run: Callable[[Probe], Observation]


class Probe:
    """The stack's addresses and one HTTP client."""

    def __init__(self, stack: Stack, scenario: Scenario) -> None:
        self.stack = stack
        self.scenario = scenario
        self.http = httpx.Client(timeout=15.0)
        self.rng = random.Random(2026)

    def admission(self, **fields: Any) -> dict[str, Any]:
        event = sample_admission(self.rng, now=datetime.now().astimezone())
        event.update(fields)
        return event

    def takecare(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.stack.takecare_adapter_url}/takecare/v1/{path}", **kwargs)

    def router(self, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return self.http.request(
            method, f"{self.stack.router_url}{path}", headers=headers, **kwargs
        )

    def console(self) -> httpx.Client:
        """A browser of the console of its own: its own cookies, redirects not followed."""
        return httpx.Client(base_url=self.stack.router_url, timeout=15.0)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def expect_status(res: httpx.Response, wanted: int, detail: str = "") -> Observation:
    return Observation(str(res.status_code), res.status_code == wanted, detail)


def log_in(console: httpx.Client, user: str = "ops") -> httpx.Response:
    """The sandbox password account's log-in form, as posted by a browser."""
    return console.post(
        "/console/login",
        data={"user": user, "password": SANDBOX_PASSWORDS[user], "next": "/console/"},
    )


def csrf_of(page: httpx.Response) -> str | None:
    """The CSRF token of a console page's forms (every page after log-in has one)."""
    found = CSRF_FIELD.search(page.text)
    return found.group(1) if found else None
