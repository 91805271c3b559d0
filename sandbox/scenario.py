"""A small client of a running stack, over real HTTP: post native events to either adapter,
make a simulator emit its own events, switch a simulator's faults, read what a simulated
journal or the subscriber holds, subscribe the subscriber simulator, and wait (polling with a
deadline) for deliveries and alerts. Used by ``make demo``, the end-to-end tests and the
benchmarks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx

from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.people import in_region
from sandbox.simulators.subscriber import PATH as SUBSCRIBER_PATH
from sandbox.simulators.subscriber import SANDBOX_SUBSCRIBER_SECRET
from sandbox.stack import Stack
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN
from services.adapter_takecare.settings import SANDBOX_PRIMARY_CARE_TOKEN as PRIMARY_CARE_TOKEN
from services.adapter_takecare.settings import SANDBOX_TAKECARE_TOKEN as TAKECARE_API_TOKEN
from services.adapter_treserva.settings import SANDBOX_INTAKE_TOKEN as TRESERVA_INTAKE_TOKEN
from services.adapter_treserva.settings import SANDBOX_TRESERVA_TOKEN as TRESERVA_API_TOKEN
from services.messaging.sandbox_secrets import APPROVER_TOKEN
from services.router.settings import SANDBOX_OPS_TOKEN

T = TypeVar("T")


class IntakeUnavailable(Exception):
    """The adapter refused for now (503, its store is unavailable): a source sends again."""


class Timeout(AssertionError):
    """An expectation was not met before its deadline."""


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.02
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Scenario:
    stack: Stack
    rng: random.Random

    subscriptions: list[str] = field(default_factory=list)  # made by this scenario

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self.http.close()

    def leave_clean(self) -> None:
        """Leave a shared stack as the next test expects it: no simulator faults, this
        scenario's subscriptions off, and no incident left open."""
        for system in ("treserva", "takecare", "subscriber"):
            self.set_fault(system, "none")
        for subscription_id in self.subscriptions:
            self.set_subscription_status(subscription_id, "off")
        for item in self.ops("/api/v1/alerts?state=open")["items"]:
            res = self.http.post(
                f"{self.stack.router_url}/api/v1/alerts/{item['id']}/resolve",
                json={"operator": "test suite", "note": "the test that caused it has ended"},
                headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
            )
            if res.status_code != 409:  # 409: it closed itself meanwhile
                res.raise_for_status()

    def post_admission(self, **overrides: Any) -> tuple[str, float]:
        """POST one admission of a patient of the stack's region to adapter_takecare;
        return (message id, seconds to 202)."""
        with in_region(self.stack.settings.region):
            event = sample_admission(self.rng, now=datetime.now().astimezone())
        event.update(overrides)
        started = time.perf_counter()
        res = self.http.post(
            f"{self.stack.takecare_adapter_url}/takecare/v1/admissions",
            json=event,
            headers={"authorization": f"Bearer {SANDBOX_INTAKE_TOKEN}"},
        )
        elapsed = time.perf_counter() - started
        if res.status_code != 202:
            raise AssertionError(f"intake answered {res.status_code}: {res.text[:300]}")
        return str(res.json()["messageId"]), elapsed

    def post_event(self, system: str, route: str, event: dict[str, Any]) -> str:
        """POST a native event to ``system``'s adapter; return the message id."""
        base, token = {
            "takecare": (self.stack.takecare_adapter_url, SANDBOX_INTAKE_TOKEN),
            "treserva": (self.stack.treserva_adapter_url, TRESERVA_INTAKE_TOKEN),
        }[system]
        res = self.http.post(
            f"{base}/{system}/v1/{route}", json=event, headers={"authorization": f"Bearer {token}"}
        )
        if res.status_code == 503:
            raise IntakeUnavailable(f"{system} intake answered 503: {res.text[:300]}")
        if res.status_code != 202:
            raise AssertionError(f"{system} intake answered {res.status_code}: {res.text[:500]}")
        return str(res.json()["messageId"])

    def emit(self, system: str, family: str, count: int = 1, **options: Any) -> list[str]:
        """Make a simulated journal send ``count`` events of ``family``; their message ids."""
        control = {
            "takecare": self.stack.takecare_sim_control_url,
            "treserva": self.stack.treserva_sim_control_url,
        }[system]
        res = self.http.post(
            f"{control}/_sim/emit", json={"family": family, "count": count, "options": options}
        )
        res.raise_for_status()
        sent = res.json()["sent"]
        failed = [s for s in sent if s["status"] != 202]
        if failed:
            raise AssertionError(f"{system} adapter refused emitted {family}: {failed[:2]}")
        return [str(s["messageId"]) for s in sent]

    def journal(self, system: str, path: str) -> Any:
        """GET ``/api/v1/<path>`` on a simulated journal (what it holds); None on 404."""
        base, token = {
            "takecare": (self.stack.takecare_sim_url, TAKECARE_API_TOKEN),
            "treserva": (self.stack.treserva_sim_url, TRESERVA_API_TOKEN),
            "primary-care": (self.stack.takecare_sim_url, PRIMARY_CARE_TOKEN),
        }[system]
        res = self.http.get(f"{base}/api/v1/{path}", headers={"authorization": f"Bearer {token}"})
        if res.status_code == 404:
            return None
        res.raise_for_status()
        return res.json()

    def set_fault(self, system: str, mode: str, **extra: Any) -> None:
        control = {
            "takecare": self.stack.takecare_sim_control_url,
            "treserva": self.stack.treserva_sim_control_url,
            "subscriber": self.stack.subscriber_sim_control_url,
        }[system]
        self.http.put(f"{control}/_sim/fault", json={"mode": mode, **extra}).raise_for_status()

    def set_treserva_fault(self, mode: str, **extra: Any) -> None:
        res = self.http.put(
            f"{self.stack.treserva_sim_control_url}/_sim/fault", json={"mode": mode, **extra}
        )
        res.raise_for_status()

    def units(self, system: str) -> dict[str, int]:
        """What a simulated journal holds per receiving unit (HSA-id; "-": none named)."""
        control = {
            "takecare": self.stack.takecare_sim_control_url,
            "treserva": self.stack.treserva_sim_control_url,
        }[system]
        res = self.http.get(f"{control}/_sim/units")
        res.raise_for_status()
        return dict(res.json())

    def treserva_stats(self) -> dict[str, Any]:
        res = self.http.get(f"{self.stack.treserva_sim_control_url}/_sim/stats")
        res.raise_for_status()
        return dict(res.json())

    def subscribe(
        self,
        events: list[str],
        *,
        sources: list[str] | None = None,
        secret: str = SANDBOX_SUBSCRIBER_SECRET,
        name: str = "the region's communication platform",
    ) -> str:
        """Subscribe the subscriber simulator through the router's API, as two admins do:
        the operator token creates it (pending), the sandbox's second admin activates it;
        the subscription id."""
        criteria: dict[str, Any] = {"events": events}
        if sources is not None:
            criteria["sources"] = sources
        res = self.http.post(
            f"{self.stack.router_url}/api/v1/subscriptions",
            json={
                "name": name,
                "criteria": criteria,
                "channel": {
                    "type": "rest-hook",
                    "endpoint": f"{self.stack.subscriber_sim_url}{SUBSCRIBER_PATH}",
                },
                "secret": secret,
            },
            headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
        )
        if res.status_code != 201:
            raise AssertionError(f"subscription refused: {res.status_code} {res.text[:300]}")
        self.subscriptions.append(str(res.json()["id"]))
        activated = self.http.post(
            f"{self.stack.router_url}/api/v1/subscriptions/{self.subscriptions[-1]}/activate",
            headers={"authorization": f"Bearer {APPROVER_TOKEN}"},
        )
        if activated.status_code != 200:
            raise AssertionError(
                f"activation refused: {activated.status_code} {activated.text[:300]}"
            )
        return self.subscriptions[-1]

    def set_subscription_status(self, subscription_id: str, status: str) -> None:
        res = self.http.patch(
            f"{self.stack.router_url}/api/v1/subscriptions/{subscription_id}",
            json={"status": status},
            headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
        )
        res.raise_for_status()

    def subscriber_received(self) -> list[dict[str, Any]]:
        """What the subscriber simulator stored (once per Idempotency-Key)."""
        res = self.http.get(f"{self.stack.subscriber_sim_control_url}/_sim/received")
        res.raise_for_status()
        return list(res.json()["items"])

    def subscriber_stats(self) -> dict[str, Any]:
        res = self.http.get(f"{self.stack.subscriber_sim_control_url}/_sim/stats")
        res.raise_for_status()
        return dict(res.json())

    def ops(self, path: str) -> Any:
        res = self.http.get(
            f"{self.stack.router_url}{path}",
            headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
        )
        res.raise_for_status()
        return res.json()

    def message(self, message_id: str) -> dict[str, Any] | None:
        """The router's view of a message; None if unknown or the router is restarting."""
        try:
            res = self.http.get(
                f"{self.stack.router_url}/api/v1/messages/{message_id}",
                headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
            )
        except httpx.TransportError:
            return None
        if res.status_code in (404, 503):  # 503: the router's database is restarting
            return None
        if res.status_code == 429:  # over the API's rate: come back as Retry-After says
            time.sleep(float(res.headers.get("retry-after", "1")))
            return None
        res.raise_for_status()
        return dict(res.json())

    def wait_for_state(
        self, message_id: str, state: str, *, timeout_s: float, destination: str | None = None
    ) -> dict[str, Any]:
        """The message once every delivery (or the one to ``destination``) is in ``state``."""

        def probe() -> dict[str, Any] | None:
            found = self.message(message_id)
            if not found:
                return None
            chosen = [
                d
                for d in found["deliveries"]
                if destination is None or d["destination"] == destination
            ]
            if chosen and all(d["state"] == state for d in chosen):
                return found
            return None

        where = f" to {destination}" if destination else ""
        return wait_for(f"message {message_id}{where} to be {state}", probe, timeout_s=timeout_s)

    @staticmethod
    def delivery(detail: dict[str, Any], destination: str) -> dict[str, Any]:
        (found,) = [d for d in detail["deliveries"] if d["destination"] == destination]
        return dict(found)

    def wait_for_alert(self, kind: str, destination: str, *, timeout_s: float) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            for item in self.ops("/api/v1/alerts?state=open")["items"]:
                if item["kind"] == kind and item["destination"] == destination:
                    return dict(item)
            return None

        return wait_for(f"an open {kind} alert for {destination}", probe, timeout_s=timeout_s)
