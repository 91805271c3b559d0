"""Whole stacks for the e2e and reliability tests on real sockets: started and stopped
however the test ends, or kept up by a supervisor as `make run` does; quick retries."""

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.demo import DEADLINE_S, demo_settings
from sandbox.stack import Stack, StackSettings
from tests.support import fhir_tap
from tests.support.brokers import stack_broker


@contextlib.contextmanager
def supervise(settings: StackSettings) -> Iterator[Stack]:
    """A started stack whose exited children are restarted, as `make run` does."""
    stack = Stack(settings, echo=lambda _: None)
    stop = threading.Event()
    failure: list[BaseException] = []

    def revive() -> None:
        while not stop.wait(0.2):
            try:
                stack.revive()
            except BaseException as exc:  # reported by the test, not lost in a thread
                failure.append(exc)
                return

    try:
        stack.start()
        thread = threading.Thread(target=revive, daemon=True)
        thread.start()
        yield stack
        fhir_tap.drain(stack)  # what it put on Kafka, for the e2e module's FHIR check
    finally:
        stop.set()
        stack.stop()
    assert not failure, failure


def fault_settings(data_dir: Path, **overrides: object) -> StackSettings:
    chosen: dict[str, object] = {
        "kafka": stack_broker(),
        "admission_confirmation_deadline_s": 900,
        "confirmation_deadline_s": 900,
        "attempt_timeout_s": 5.0,
        "retry_base_s": 0.2,
        **overrides,
    }
    return demo_settings(data_dir, **chosen)


@contextmanager
def running(settings: StackSettings) -> Iterator[Stack]:
    """A started stack, stopped however the test ends; what it put on Kafka goes to the
    active FHIR tap first (tests/support/fhir_tap.py; none outside the e2e tests)."""
    s = Stack(settings, echo=lambda _: None)
    try:
        s.start()
        yield s
        fhir_tap.drain(s)
    finally:
        s.stop()


def admission_deadline_s() -> float:
    """The e2e stacks' admission confirmation deadline: the demo's 3 s on Tansu. On Apache
    Kafka (SASL_SSL, a signature checked at every hop) a fresh stack's first notice took
    2.7 s from intake to its receipt at the router, so the deadline passed and the router
    re-sent it as unconfirmed (two attempts where the test expects one); 10 s there."""
    return 10.0 if stack_broker() == "apache" else DEADLINE_S


def e2e_settings(tmp_path: Path, stack_db: str | None, **overrides: object) -> StackSettings:
    """The e2e tests' stack: quick attempt timeouts and retries."""
    chosen: dict[str, object] = {
        "database_url": stack_db,
        "kafka": stack_broker(),
        "attempt_timeout_s": 5.0,
        "retry_base_s": 0.2,
        "admission_confirmation_deadline_s": admission_deadline_s(),
        **overrides,
    }
    return demo_settings(tmp_path / "stack", **chosen)
