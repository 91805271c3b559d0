"""Each delivery's legal deadline, and its working-day deadline where an agreement counts
working days by the Swedish calendar, on the console's message page and in the API's message
detail, in Stockholm time with the zone spelt out."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.messaging.envelope import EventCode
from services.router.ops.app import create_app
from services.router.ops.console.web import deadline_time
from services.router.ops.message_schemas import DeliveryDetailOut
from services.router.ops.queries import working_due_at
from services.router.routing.swedish_calendar import STOCKHOLM
from services.router.routing.tables import delivery, message
from services.router.settings import SANDBOX_OPS_TOKEN, RouterSettings
from services.router.statistics.payment import MunicipalityDirectory
from services.router.statistics.payment_clock import (
    DayCount,
    PaymentAgreement,
    PaymentAgreements,
    working_day_deadline,
)
from tests.support.console_client import log_in
from tests.support.router import Clock

READY = "c0ffee00-0000-4000-8000-000000000001"
SENT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)  # a Friday, 11:00 in Stockholm
LEGAL_DUE = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
WORKING = PaymentAgreement(days=3, kind=DayCount.WORKING)


def test_working_days_skip_the_weekend_and_christmas():
    # Mon 7, Tue 8, Wed 9 Dec are the three working days: Thursday is the first payable day
    assert working_day_deadline(SENT, WORKING) == datetime(2026, 12, 10, tzinfo=STOCKHOLM)
    # Wed 23 Dec: julafton, juldagen and the weekend do not count; 28, 29, 30 do
    before_christmas = datetime(2026, 12, 23, 9, 0, tzinfo=UTC)
    expected = datetime(2026, 12, 31, tzinfo=STOCKHOLM)
    assert working_day_deadline(before_christmas, WORKING) == expected
    assert working_day_deadline(SENT, PaymentAgreement()) is None  # the law: calendar days


def test_only_a_sent_ready_notice_to_a_municipality_has_a_working_day_deadline():
    agreements, directory = PaymentAgreements(default=WORKING), MunicipalityDirectory()
    ready = EventCode.READY_FOR_DISCHARGE.value
    assert working_due_at(ready, "treserva", SENT, agreements, directory) is not None
    assert working_due_at(ready, "treserva", None, agreements, directory) is None  # not sent
    assert working_due_at(ready, "takecare", SENT, agreements, directory) is None
    assert working_due_at("admission-notice", "treserva", SENT, agreements, directory) is None
    assert working_due_at(ready, "treserva", SENT, PaymentAgreements(), directory) is None


def test_a_deadline_is_shown_in_stockholm_time_with_its_zone():
    assert deadline_time(LEGAL_DUE.isoformat()) == "2026-12-08 16:00 CET"
    assert deadline_time(datetime(2026, 7, 1, 10, 0, tzinfo=UTC)) == "2026-07-01 12:00 CEST"
    assert deadline_time(None) == "–"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def ready_notice(sessions, clock):
    """A ready-for-discharge notice sent to Treserva; its delivery row carries a legal
    deadline too, so that one page shows both (the page shows what the row holds)."""
    async with sessions.begin() as s:
        await s.execute(
            message.insert().values(
                id=READY,
                event_code=EventCode.READY_FOR_DISCHARGE.value,
                source="takecare",
                pseudonym="ab" * 16,
                sent_at=SENT,
                received_at=SENT,
                payload="{}",
            )
        )
        await s.execute(
            delivery.insert().values(
                message_id=READY,
                destination="treserva",
                state="sent",
                attempts=1,
                confirm_by=SENT + timedelta(minutes=30),
                sent_at=SENT,
                legal_due_at=LEGAL_DUE,
                created_at=SENT,
                updated_at=SENT,
            )
        )
    return READY


@pytest.fixture
async def client(sessions, clock):
    settings = RouterSettings(payment_default_agreement=WORKING)
    app = create_app(settings, sessions=sessions, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as c:
        yield c


async def test_the_message_page_shows_both_deadlines_with_the_zone(client, ready_notice):
    await log_in(client)
    page = (await client.get(f"/console/messages/{ready_notice}")).text
    assert "Lagstadgad tidsfrist" in page and "Tidsfrist i arbetsdagar" in page
    assert '<td class="legal-due">2026-12-08 16:00 CET</td>' in page
    assert '<td class="working-due">2026-12-10 00:00 CET</td>' in page


async def test_the_api_detail_gives_both_deadlines_and_their_zone(client, ready_notice):
    res = await client.get(
        f"/api/v1/messages/{ready_notice}",
        headers={"authorization": f"Bearer {SANDBOX_OPS_TOKEN}"},
    )
    assert res.status_code == 200, res.text
    (found,) = res.json()["deliveries"]
    assert datetime.fromisoformat(found["legal_due_at"]) == LEGAL_DUE
    assert found["working_due_at"] == "2026-12-10T00:00:00+01:00"
    assert found["deadline_time_zone"] == "Europe/Stockholm"
    DeliveryDetailOut.model_validate(found)  # the schema the OpenAPI publishes


def test_the_delivery_detail_schema_names_both_deadlines():
    schema = DeliveryDetailOut.model_json_schema()
    assert {"legal_due_at", "working_due_at", "deadline_time_zone"} <= set(schema["properties"])
    assert schema["properties"]["deadline_time_zone"]["const"] == "Europe/Stockholm"
