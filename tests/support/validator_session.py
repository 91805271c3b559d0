"""One FHIR validator server for a whole test run.

A validator JVM's start costs about 90 s of CPU on this 2-core machine (the R4 core
definitions and the profiles' snapshots); the suite asked for six of them (a server per
validator module and per xdist worker of the e2e tests, and batch runs), about a quarter of
``make test``'s CPU. ``make test`` runs both its pytest runs under

    python -m tests.support.validator_session pytest ... --and-then pytest ...

which starts one server, names it in ``BROKER_TEST_FHIR_VALIDATOR_URL``, runs the commands
one after another while each passes, and stops it. :func:`validator_url` gives a fixture
that server, or, when a test runs on its own, a server of its own; a named server that does
not answer is a failure, never a skip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from sandbox.fhir_validator_process import FhirValidatorServer

ENV = "BROKER_TEST_FHIR_VALIDATOR_URL"
ANSWER_WITHIN_S = 30.0


def _answers(url: str) -> None:
    deadline = time.monotonic() + ANSWER_WITHIN_S
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ENV} names {url}, which did not answer /health")
        time.sleep(0.2)


@contextmanager
def validator_url() -> Iterator[str]:
    """The base URL of the run's validator server, else of one started for the caller."""
    shared = os.environ.get(ENV)
    if shared:
        _answers(shared)
        yield shared
        return
    with FhirValidatorServer() as server:
        yield server.base_url


THEN = "--and-then"
USAGE = "tests.support.validator_session"


def commands(argv: Sequence[str]) -> list[list[str]]:
    """``a b --and-then c d`` → ``[["a", "b"], ["c", "d"]]``; an empty command is none."""
    found: list[list[str]] = [[]]
    for arg in argv:
        if arg == THEN:
            found.append([])
        else:
            found[-1].append(arg)
    return [c for c in found if c]


def main(argv: Sequence[str]) -> int:
    steps = commands(argv)
    if not steps:
        print(
            f"usage: python -m tests.support.validator_session CMD... [{THEN} CMD...]",
            file=sys.stderr,
        )
        return 2
    began = time.monotonic()
    with FhirValidatorServer() as server:
        print(
            f"FHIR validator for this run at {server.base_url} ({time.monotonic() - began:.0f} s)"
        )
        env = os.environ | {ENV: server.base_url}
        for step in steps:
            code = subprocess.run(step, env=env, check=False).returncode
            if code != 0:
                return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
