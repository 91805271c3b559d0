"""An unconfirmed notice is never given up: sent again at every confirmation interval past
its attempt budget until its receipt comes or an operator closes it; replay takes any
unconfirmed delivery; the incident says what happens next and when (issue: a notice dropped
overnight was never sent again, and neither replay nor anything else could send it)."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode
from services.messaging.outbox import outbox
from services.router.ops.app import create_app
from services.router.routing.tables import delivery, delivery_transition, replay_audit
from services.router.settings import SANDBOX_OPS_TOKEN, RouterSettings
from tests.support.incidents import Sink, admission, alerts, make_router
from tests.support.router import T0, Clock, message_id, result

pytestmark = pytest.mark.alerts

TOKEN = {"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"}
INTERVAL_S = 15 * 60  # the admission notice's confirmation deadline in make_router
BUDGET = 3  # make_router's max_attempts


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    return await make_router(sessions, clock, Sink())


@pytest.fixture
async def api(sessions, clock):
    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r", headers=TOKEN
    ) as client:
        yield client


async def _treserva(sessions):
    async with sessions() as s:
        return (await s.execute(select(delivery).where(delivery.c.destination == "treserva"))).one()


async def _commands_to_treserva(sessions) -> list[str]:
    async with sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
    return [r.headers["attempt"] for r in rows if r.topic == topics.outbound("treserva")]


async def _accepted_then_dropped(router, sessions, seed: int) -> str:
    rec = admission(seed, admitted_at=T0, patient=f"{seed:02d}" * 16)
    await router.handle_batch([rec])
    mid = str(message_id(rec))
    await router.handle_batch([result(mid, ResponseCode.OK)])  # accepted, then dropped
    return mid


async def _drop_one_more_round(router, sessions, clock, mid: str) -> None:
    """One confirmation interval passes without a receipt: the router sends it again, and
    Treserva accepts the copy (HTTP 2xx) and drops it once more."""
    clock.advance(INTERVAL_S + 1)
    await router.tick()
    row = await _treserva(sessions)
    assert row.state == "dispatched", row.state
    await router.handle_batch([result(mid, ResponseCode.OK, attempt=row.attempts)])


async def test_a_notice_dropped_all_night_is_still_sent_until_its_receipt_comes(
    router, sessions, clock
):
    mid = await _accepted_then_dropped(router, sessions, 1)
    rounds = BUDGET * 3 + 2  # far past the attempt budget: a night of 15-minute intervals
    for _ in range(rounds):
        await _drop_one_more_round(router, sessions, clock, mid)
    assert await _commands_to_treserva(sessions) == [str(n) for n in range(1, rounds + 2)]
    row = await _treserva(sessions)
    assert row.state == "sent" and row.resend_at == clock() + timedelta(seconds=INTERVAL_S)
    # Treserva is repaired in the morning: the next copy is stored and its receipt confirms
    await _drop_one_more_round(router, sessions, clock, mid)
    await router.handle_batch(
        [result(mid, ResponseCode.OK, attempt=rounds + 2, event=EventCode.RECEIPT)]
    )
    assert (await _treserva(sessions)).state == "confirmed"
    clock.advance(INTERVAL_S * 3)
    await router.tick()
    assert len(await _commands_to_treserva(sessions)) == rounds + 2  # and no copy after it


async def test_each_round_has_a_fresh_budget_for_transient_errors(router, sessions, clock):
    mid = await _accepted_then_dropped(router, sessions, 2)
    for _ in range(BUDGET + 1):
        await _drop_one_more_round(router, sessions, clock, mid)
    clock.advance(INTERVAL_S + 1)
    await router.tick()  # a new round: Treserva answers 503 twice, then takes it
    for _ in range(BUDGET - 1):
        row = await _treserva(sessions)
        await router.handle_batch([result(mid, ResponseCode.TRANSIENT_ERROR, attempt=row.attempts)])
        clock.advance(20)
        await router.tick()
    row = await _treserva(sessions)
    assert row.state == "dispatched", "the round's budget must not count earlier rounds"
    await router.handle_batch([result(mid, ResponseCode.OK, attempt=row.attempts)])
    assert (await _treserva(sessions)).state == "sent"


async def test_replay_takes_a_sent_unconfirmed_delivery_and_the_candidates_show_it(
    router, sessions, clock, api
):
    mid = await _accepted_then_dropped(router, sessions, 3)
    candidates = (await api.get("/api/v1/replays/candidates?destination=treserva")).json()
    assert candidates["count"] == 1 and candidates["byState"]["sent"] == 1
    clock.advance(60)
    res = await api.post(
        "/api/v1/replays",
        json={"messageIds": [mid], "reason": "Treserva restored its intake", "operator": "Åsa"},
    )
    assert res.status_code == 200 and res.json()["replayed"] == 1, res.json()
    row = await _treserva(sessions)
    assert (row.state, row.next_attempt_at, row.attempts_at_replay) == ("pending", clock(), 1)
    assert row.resend_at == clock() + timedelta(seconds=INTERVAL_S)  # not at once after it
    await router.tick()
    assert await _commands_to_treserva(sessions) == ["1", "2"]


async def test_replay_makes_a_waiting_delivery_due_now_and_skips_one_in_flight(
    router, sessions, clock, api
):
    rec = admission(4, admitted_at=T0, patient="04" * 16)
    await router.handle_batch([rec])
    mid = message_id(rec)
    body = {"messageIds": [mid], "reason": "try it now", "operator": "ops"}
    in_flight = (await api.post("/api/v1/replays", json=body)).json()
    assert in_flight["replayed"] == 0 and in_flight["items"] == []  # dispatched: not taken
    await router.handle_batch([result(mid, ResponseCode.TRANSIENT_ERROR)])
    waiting = await _treserva(sessions)
    assert waiting.state == "pending" and waiting.next_attempt_at > clock()
    assert (await api.post("/api/v1/replays", json=body)).json()["replayed"] == 1
    assert (await _treserva(sessions)).next_attempt_at == clock()


async def test_an_operator_closes_an_unconfirmed_delivery_with_a_reason(
    router, sessions, clock, api
):
    mid = await _accepted_then_dropped(router, sessions, 5)
    path = f"/api/v1/messages/{mid}/deliveries/treserva/close"
    no_reason = await api.post(path, json={"operator": "Åsa"})
    assert no_reason.status_code == 422
    res = await api.post(path, json={"operator": "Åsa", "reason": "phoned through to the unit"})
    assert res.status_code == 200, res.text
    row = await _treserva(sessions)
    assert row.state == "dead_letter" and "phoned through" in row.last_error
    clock.advance(INTERVAL_S * 4)
    await router.tick()
    assert await _commands_to_treserva(sessions) == ["1"]  # closed: never sent again
    async with sessions() as s:
        audit = (await s.execute(select(replay_audit))).one()
        reasons = (
            await s.execute(
                select(delivery_transition.c.reason).where(
                    delivery_transition.c.delivery_id == row.id
                )
            )
        ).scalars()
        closing = [r for r in reasons if r.startswith("closed by")]
    assert (audit.outcome, audit.actor) == ("closed", "API client ops")
    assert closing == ["closed by API client ops: phoned through to the unit"]
    assert (await api.post(path, json={"operator": "Å", "reason": "again"})).status_code == 409
    missing = f"/api/v1/messages/{mid}/deliveries/nowhere/close"
    assert (await api.post(missing, json={"operator": "Å", "reason": "xyz"})).status_code == 404
    # still replayable, as any dead letter
    body = {"messageIds": [mid], "reason": "the unit asked for it after all", "operator": "o"}
    assert (await api.post("/api/v1/replays", json=body)).json()["replayed"] == 1


async def test_the_incident_says_what_happens_next_and_when(router, sessions, clock, api):
    await _accepted_then_dropped(router, sessions, 6)
    clock.advance(INTERVAL_S + 1)
    await router.tick()  # overdue: the incident opens and the notice is sent again
    row = await _treserva(sessions)
    await router.handle_batch([result(row.message_id, ResponseCode.OK, attempt=row.attempts)])
    (incident,) = [
        a
        for a in await alerts(sessions)
        if (a.kind, a.destination) == ("confirmation_overdue", "treserva")
    ]
    listed = (await api.get("/api/v1/alerts?state=open")).json()["items"]
    detail = (await api.get(f"/api/v1/alerts/{incident.id}")).json()
    (step,) = {str(a["next_step"]) for a in listed if a["id"] == incident.id}
    assert detail["next_step"]["action"] == "send again"
    assert detail["next_step"]["at"] == (clock() + timedelta(seconds=INTERVAL_S)).isoformat()
    assert "until the receipt comes or an operator closes" in detail["next_step"]["text"]
    assert step == str(detail["next_step"])


async def test_the_console_shows_the_next_step_of_an_open_incident(router, sessions, clock, api):
    from services.router.ops.console.accounts import SANDBOX_PASSWORDS

    await _accepted_then_dropped(router, sessions, 7)
    clock.advance(INTERVAL_S + 1)
    await router.tick()
    row = await _treserva(sessions)
    await router.handle_batch([result(row.message_id, ResponseCode.OK, attempt=row.attempts)])
    api.headers.pop("authorization")
    login = await api.post(
        "/console/login",
        data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"], "next": "/console/"},
    )
    assert login.status_code == 303, login.text
    page = (await api.get("/console/incidents?state=open")).text
    assert "Nästa steg: skickas igen vid varje bekräftelseintervall" in page


async def test_a_patients_notices_are_sent_again_in_their_order(router, sessions, clock):
    """Two notices of one patient, both accepted and dropped: the later one is never sent
    again ahead of the earlier, even when its own re-send time comes first."""
    from sqlalchemy import update

    first = admission(8, admitted_at=T0, patient="08" * 16)
    await router.handle_batch([first])
    await router.handle_batch([result(message_id(first), ResponseCode.OK)])
    clock.advance(30)
    second = admission(9, admitted_at=T0, patient="08" * 16)
    await router.handle_batch([second])
    await router.handle_batch([result(message_id(second), ResponseCode.OK)])

    async def treserva_rows():
        async with sessions() as s:
            rows = (
                await s.execute(
                    select(delivery)
                    .where(delivery.c.destination == "treserva")
                    .order_by(delivery.c.id)
                )
            ).all()
        return rows

    async with sessions.begin() as s:  # the earlier one's next re-send is later
        await s.execute(
            update(delivery)
            .where(delivery.c.message_id == message_id(first))
            .values(resend_at=clock() + timedelta(seconds=INTERVAL_S * 2))
        )
    clock.advance(INTERVAL_S + 1)
    await router.tick()
    assert [r.state for r in await treserva_rows()] == ["sent", "sent"]  # not alone
    clock.advance(INTERVAL_S * 2)
    await router.tick()  # the earlier one is due: it takes the later one along, behind it
    head, follower = await treserva_rows()
    assert (head.state, follower.state) == ("dispatched", "pending")
    await router.handle_batch([result(head.message_id, ResponseCode.OK, attempt=head.attempts)])
    head, follower = await treserva_rows()
    assert (head.state, follower.state) == ("sent", "pending")  # overdue: wait for its receipt
    await router.handle_batch(
        [result(head.message_id, ResponseCode.OK, attempt=head.attempts, event=EventCode.RECEIPT)]
    )
    head, follower = await treserva_rows()
    assert (head.state, follower.state) == ("confirmed", "dispatched")
    assert follower.resend_at > clock() + timedelta(seconds=INTERVAL_S / 2)  # a new round


async def test_a_later_notice_waits_behind_an_earlier_one_overdue_without_receipt(
    router, sessions, clock
):
    """Accepted is not enough once the confirmation deadline has passed without a receipt:
    the earlier notice may have been dropped, and the later one, sent now, would be stored
    ahead of it. It waits until the earlier one is confirmed."""
    first = admission(10, admitted_at=T0, patient="10" * 16)
    await router.handle_batch([first])
    await router.handle_batch([result(message_id(first), ResponseCode.OK)])  # then dropped
    clock.advance(INTERVAL_S + 1)
    second = admission(11, admitted_at=T0, patient="10" * 16)
    await router.handle_batch([second])

    async def state_of(mid):
        async with sessions() as s:
            return await s.scalar(
                select(delivery.c.state).where(
                    delivery.c.message_id == mid, delivery.c.destination == "treserva"
                )
            )

    await router.tick()
    assert await state_of(message_id(second)) == "pending"  # held behind the suspect
    row = await _treserva_row(sessions, message_id(first))
    await router.handle_batch([result(row.message_id, ResponseCode.OK, attempt=row.attempts)])
    await router.tick()
    assert await state_of(message_id(second)) == "pending"  # accepted again: not enough
    await router.handle_batch(
        [result(row.message_id, ResponseCode.OK, attempt=row.attempts, event=EventCode.RECEIPT)]
    )
    assert await state_of(message_id(second)) == "dispatched"  # released by the receipt


async def _treserva_row(sessions, mid):
    async with sessions() as s:
        return (
            await s.execute(
                select(delivery).where(
                    delivery.c.message_id == mid, delivery.c.destination == "treserva"
                )
            )
        ).one()
