"""``make attack-probe`` is the closing table of the security work: every attack of the
threat model in docs/security.md against a running stack. Run here too, so the table stays true."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import attack_probe
from sandbox.stack import Stack
from tests.support.stacks import running

pytestmark = [pytest.mark.e2e, pytest.mark.security, pytest.mark.broker_independent]


@pytest.fixture
def probe_stack(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    """As ``make attack-probe`` starts it: with the sandbox's OIDC provider if installed."""
    settings = attack_probe.probe_settings(tmp_path / "stack", database_url=stack_db)
    with contextlib.ExitStack() as resources:
        settings, _ = attack_probe.with_identity_provider(settings, resources)
        with running(settings) as s:
            yield s


def test_every_attack_is_answered_as_the_threat_model_expects(probe_stack: Stack):
    results = attack_probe.run(probe_stack)
    assert len(results) == len(attack_probe.ATTACKS) >= 39
    failed = {a.name: (seen.status, seen.detail) for a, seen in results if not seen.ok}
    assert failed == {}
