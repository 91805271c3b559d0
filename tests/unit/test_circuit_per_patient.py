"""The circuit counts failures across patients: one patient's record the receiver keeps
refusing never opens it for everyone, and is parked under its own incident while the others
flow; failures of several patients, or of the destination as a whole, do open it; the probe
is another patient's delivery (issue: five failures of one patient opened Treserva's circuit,
the probe was that patient's retry, and six other patients waited 6-10 s)."""

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.messaging.envelope import FailureKind, ResponseCode
from services.router.routing import circuit
from services.router.routing.circuit import CircuitPolicy, destination_circuit
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.incidents import Sink, alerts
from tests.support.router import Clock, deliveries, inbound, message_id, result, started

pytestmark = pytest.mark.alerts

THRESHOLD = 3
CAP_S = 60
RESPONSE, TRANSPORT = FailureKind.RESPONSE, FailureKind.TRANSPORT


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=CAP_S, max_attempts=20),
        ),
        attempt_timeout=timedelta(minutes=5),
        rng=random.Random(1),
        circuit=CircuitPolicy(failure_threshold=THRESHOLD, open_s=10, max_open_s=40),
        alert_sinks=(Sink(),),
    )
    return await started(Router(sessions=sessions, rules=rules, clock=clock))


async def _circuit(sessions):
    async with sessions() as s:
        return (
            await s.execute(
                select(destination_circuit).where(destination_circuit.c.destination == "treserva")
            )
        ).first()


async def _fail_again(router, sessions, clock, mid, kind):
    """The patient's delivery is dispatched again when due and fails again."""
    for _ in range(CAP_S + 5):
        (d,) = [x for x in await deliveries(sessions) if x.message_id == mid]
        if d.state == "dispatched":
            break
        clock.advance(1)
        await router.tick()
    assert d.state == "dispatched", d.state
    why = "HTTP 500" if kind is RESPONSE else "transport: ConnectError"
    await router.handle_batch(
        [result(mid, ResponseCode.TRANSIENT_ERROR, attempt=d.attempts, why=why, failure=kind)]
    )


@pytest.mark.slow
async def test_one_patients_refused_record_never_opens_the_circuit_and_is_parked(
    router, sessions, clock
):
    poison = inbound(1, patient="a" * 32)
    await router.handle_batch([poison])
    for _ in range(THRESHOLD + 2):
        await _fail_again(router, sessions, clock, message_id(poison), RESPONSE)
    row = await _circuit(sessions)
    assert row.state == "closed" and row.failures == 1  # one patient: counted once
    (parked,) = [d for d in await deliveries(sessions) if d.message_id == message_id(poison)]
    assert parked.state == "pending"
    assert parked.next_attempt_at == clock() + timedelta(seconds=CAP_S)  # the longest wait
    (incident,) = [a for a in await alerts(sessions) if a.kind == "patient_parked"]
    assert (incident.destination, incident.affected, incident.severity) == (
        "treserva",
        1,
        "warning",
    )
    # the others flow at once, unheld
    others = [inbound(seed, patient=f"{seed}" * 32) for seed in (2, 3, 4, 5, 6, 7)]
    await router.handle_batch(others)
    states = {d.message_id: d.state for d in await deliveries(sessions)}
    assert {states[message_id(r)] for r in others} == {"dispatched"}


async def test_failures_of_several_patients_open_it(router, sessions, clock):
    recs = [inbound(seed, patient=f"{seed}" * 32) for seed in range(1, THRESHOLD + 1)]
    await router.handle_batch(recs)
    for rec in recs[:-1]:
        await _fail_again(router, sessions, clock, message_id(rec), RESPONSE)
    assert (await _circuit(sessions)).state == "closed"
    await _fail_again(router, sessions, clock, message_id(recs[-1]), RESPONSE)
    assert (await _circuit(sessions)).state == "open"


@pytest.mark.parametrize("kind", [TRANSPORT, None])  # None: an adapter that does not say
async def test_the_destination_failing_as_a_whole_opens_it_whoever_the_patient(
    router, sessions, clock, kind
):
    rec = inbound(1, patient="a" * 32)
    await router.handle_batch([rec])
    for _ in range(THRESHOLD):
        await _fail_again(router, sessions, clock, message_id(rec), kind)
    assert (await _circuit(sessions)).state == "open"
    assert [a for a in await alerts(sessions) if a.kind == "patient_parked"] == []


async def test_the_probe_is_another_patients_delivery(router, sessions, clock):
    poison = inbound(1, patient="a" * 32)
    await router.handle_batch([poison])
    await _fail_again(router, sessions, clock, message_id(poison), RESPONSE)
    async with sessions.begin() as s:  # the destination then fails as a whole a while
        for _ in range(THRESHOLD):
            await circuit.record_failure(s, "treserva", router.rules.circuit, clock())
    assert (await _circuit(sessions)).state == "open"
    async with sessions.begin() as s:  # the poison's retry is due first, by the due order
        await s.execute(
            update(delivery)
            .where(delivery.c.message_id == message_id(poison))
            .values(next_attempt_at=clock())
        )
    clock.advance(1)
    waiting = inbound(2, patient="b" * 32)
    await router.handle_batch([waiting])
    clock.advance(11)  # past the probe time
    await router.tick()
    states = {d.message_id: d.state for d in await deliveries(sessions)}
    assert states[message_id(waiting)] == "dispatched"
    assert states[message_id(poison)] == "pending"
    assert (await _circuit(sessions)).probe_delivery_id is not None


async def test_a_probe_of_the_failing_patient_alone_does_not_open_it_again(router, sessions, clock):
    poison = inbound(1, patient="a" * 32)
    await router.handle_batch([poison])
    await _fail_again(router, sessions, clock, message_id(poison), RESPONSE)
    async with sessions.begin() as s:
        for _ in range(THRESHOLD):
            await circuit.record_failure(s, "treserva", router.rules.circuit, clock())
    clock.advance(11)
    await _fail_again(router, sessions, clock, message_id(poison), RESPONSE)  # the probe
    assert (await _circuit(sessions)).state == "closed"  # its own record: not the destination


@pytest.mark.slow
async def test_a_parked_delivery_is_not_dead_lettered_by_its_budget(sessions, clock):
    """Treserva is up and may take the record once its import is fixed: the parked delivery
    waits at the longest interval instead of spending its attempts into a dead letter."""
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=CAP_S, max_attempts=THRESHOLD + 1),
        ),
        attempt_timeout=timedelta(minutes=5),
        rng=random.Random(1),
        circuit=CircuitPolicy(failure_threshold=THRESHOLD),
    )
    router = await started(Router(sessions=sessions, rules=rules, clock=clock))
    poison = inbound(1, patient="a" * 32)
    await router.handle_batch([poison])
    for _ in range(THRESHOLD + 4):
        await _fail_again(router, sessions, clock, message_id(poison), RESPONSE)
    (d,) = [x for x in await deliveries(sessions) if x.message_id == message_id(poison)]
    assert (d.state, d.attempts) == ("pending", THRESHOLD + 4)
    await router.handle_batch([result(message_id(poison), ResponseCode.OK, attempt=d.attempts)])


async def test_a_destination_that_flaps_is_down_when_its_threshold_passes(router, sessions, clock):
    """It answers a probe now and then and fails again straight after: each closing lasted
    seconds, so it has been down since its first opening, and "destination down" comes when
    that passes the threshold (it never came while each closing restarted the count)."""
    policy = router.rules.circuit
    for _ in range(12):  # 12 minutes: open, a probe that passes, failures, open again …
        async with sessions.begin() as s:
            for _ in range(THRESHOLD):
                await circuit.record_failure(s, "treserva", policy, clock())
        clock.advance(50)
        async with sessions.begin() as s:
            await circuit.record_success(s, "treserva", clock())  # the probe passed
        clock.advance(10)
        await router.tick()
    down = [a for a in await alerts(sessions) if a.kind == "destination_down"]
    assert [(a.destination, a.state) for a in down] == [("treserva", "open")]
    clock.advance(policy.settle_s + 1)  # now it stays up
    async with sessions.begin() as s:
        await circuit.record_success(s, "treserva", clock())
    await router.tick()
    down = [a for a in await alerts(sessions) if a.kind == "destination_down"]
    assert [a.state for a in down] == ["resolved"]


async def test_an_opening_after_the_circuit_settled_counts_from_itself(router, sessions, clock):
    policy = router.rules.circuit
    async with sessions.begin() as s:
        for _ in range(THRESHOLD):
            await circuit.record_failure(s, "treserva", policy, clock())
        await circuit.record_success(s, "treserva", clock())
    clock.advance(3600)  # a quiet hour, then a new outage
    async with sessions.begin() as s:
        for _ in range(THRESHOLD):
            await circuit.record_failure(s, "treserva", policy, clock())
    assert (await _circuit(sessions)).opened_at == clock()
