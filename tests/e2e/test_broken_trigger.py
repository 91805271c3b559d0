"""The Gotland scenario end to end (`make demo SCENARIO=broken-trigger`): a real stack, a
real SMTP server and a real webhook receiver; every step is asserted by the scenario."""

import pytest

from sandbox.demo import broken_trigger

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.alerts,
    pytest.mark.timeout(300),
    pytest.mark.broker_independent,
    pytest.mark.database_independent,
]


def test_the_broken_admission_trigger_is_caught_told_counted_and_recovered(capsys):
    assert broken_trigger() == 0
    out = capsys.readouterr().out
    assert "the missing confirmation is caught" in out
    assert "signature verified" in out and "refused: 0" in out
    assert "Brådskande: inskrivningsmeddelande saknas hos er" in out
    assert "deviation" in out and "resolved by router" in out
