"""Delivery and alert state machines, back-off and routing."""

import random
from datetime import timedelta

import pytest

from services.messaging.envelope import System
from services.router.routing.domain import (
    AlertState,
    DeliveryState,
    IllegalTransition,
    RetryPolicy,
    check_alert_transition,
    check_delivery_transition,
    default_policies,
)

D = DeliveryState


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (D.PENDING, D.DISPATCHED),
        (D.DISPATCHED, D.SENT),
        (D.SENT, D.CONFIRMED),
        (D.DISPATCHED, D.CONFIRMED),
        (D.DISPATCHED, D.PENDING),
        (D.DISPATCHED, D.DEAD_LETTER),
        (D.SENT, D.DEAD_LETTER),
        (D.PENDING, D.SENT),
        (D.SENT, D.PENDING),  # no receipt by the deadline: sent again
        (D.PENDING, D.PENDING),  # an operator's replay makes a waiting delivery due now
        (D.PENDING, D.DEAD_LETTER),  # an operator closes it
    ],
)
def test_allowed_delivery_transitions(current, target):
    check_delivery_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (D.CONFIRMED, D.PENDING),
        (D.DEAD_LETTER, D.DISPATCHED),
        (D.CONFIRMED, D.DEAD_LETTER),
        (D.SENT, D.DISPATCHED),
        (D.DISPATCHED, D.DISPATCHED),
        (D.SENT, D.SENT),
    ],
)
def test_illegal_delivery_transitions(current, target):
    with pytest.raises(IllegalTransition):
        check_delivery_transition(current, target)


def test_alert_states_only_move_forward():
    check_alert_transition(AlertState.OPEN, AlertState.ACKNOWLEDGED)
    check_alert_transition(AlertState.ACKNOWLEDGED, AlertState.RESOLVED)
    with pytest.raises(IllegalTransition):
        check_alert_transition(AlertState.RESOLVED, AlertState.OPEN)


def test_backoff_grows_is_jittered_and_capped():
    policy = RetryPolicy(base_s=1, cap_s=30, max_attempts=5)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 12)]
    assert timedelta(seconds=0.5) <= delays[0] <= timedelta(seconds=1)
    assert timedelta(seconds=4) <= delays[3] <= timedelta(seconds=8)
    assert all(d <= timedelta(seconds=30) for d in delays)
    assert len({policy.delay(3, rng) for _ in range(20)}) > 1  # jitter
    assert not policy.exhausted(4) and policy.exhausted(5)


def test_the_catalogue_routes_by_event_and_sender():
    from services.messaging.families import destinations as routes

    municipality_and_primary_care = (System.TRESERVA, System.PRIMARY_CARE)
    assert routes("admission-notice", "takecare") == municipality_and_primary_care
    assert routes("ready-for-discharge-withdrawn", "takecare") == municipality_and_primary_care
    assert routes("medication-list", "takecare") == municipality_and_primary_care
    assert routes("medication-list", "treserva") == (System.TAKECARE,)
    assert routes("sip-updated", "treserva") == (System.TAKECARE,)
    # Treserva may not send hospital notices; unknown codes and senders go nowhere
    assert routes("admission-notice", "treserva") == ()
    assert routes("no-such-event", "takecare") == ()
    assert routes("admission-notice", "flexite") == ()


def test_every_event_code_of_a_family_has_a_policy():
    policies = default_policies(
        admission_confirmation_deadline=timedelta(minutes=15),
        confirmation_deadline=timedelta(hours=1),
        retry=RetryPolicy(),
    )
    assert policies["admission-notice"].confirmation_deadline == timedelta(minutes=15)
    assert policies["sip-invitation"].confirmation_deadline == timedelta(hours=1)
    assert "receipt" not in policies and "delivery-outcome" not in policies
