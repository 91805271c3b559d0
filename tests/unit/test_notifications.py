"""The notification queue on a real database: which rows an alert event adds, and dedupe."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.router.alerting.events import AlertChange, Severity
from services.router.alerting.notifications import Channels, unit_must_act
from services.router.routing.tables import notification
from services.router.settings import RouterSettings
from tests.support.alert_events import TUESDAY_1430, event
from tests.support.notifications import ALL_ON, HOOK, UNIT_MAIL, notifier
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.alerts


async def enqueue(sessions, alert, channels=ALL_ON):
    async with sessions.begin() as session:
        return await notifier(channels).enqueue(session, alert, TUESDAY_1430)


async def rows(sessions):
    async with sessions() as session:
        return (await session.execute(select(notification).order_by(notification.c.id))).all()


async def test_an_opened_failure_tells_ops_and_the_receiving_unit(sessions):
    ids = await enqueue(sessions, event())
    got = await rows(sessions)
    assert [r.id for r in got] == ids
    assert [(r.channel, r.recipient) for r in got] == [
        ("webhook", HOOK),
        ("email", "drift@example.se"),
        ("email", "jour@example.se"),
        ("fallback-email", UNIT_MAIL),
    ]
    assert all(r.state == "pending" and r.attempts == 0 for r in got)
    assert all(r.next_attempt_at == TUESDAY_1430 for r in got)
    assert got[0].payload["alertId"] == 12 and got[0].payload["change"] == "opened"
    assert got[3].subject.startswith("Brådskande: inskrivningsmeddelande saknas hos er")
    assert "Medicinavdelning 3" in got[3].body


async def test_the_same_event_is_queued_once(sessions):
    first = await enqueue(sessions, event())
    again = await enqueue(sessions, replace(event(), at=TUESDAY_1430 + timedelta(seconds=5)))
    assert len(first) == 4 and again == []
    assert len(await rows(sessions)) == 4


async def test_each_reminder_is_its_own_notification(sessions):
    reminder = event(change=AlertChange.REMINDER)
    assert len(await enqueue(sessions, reminder)) == 3  # ops only: the unit had its notice
    assert await enqueue(sessions, reminder) == []
    later = replace(reminder, at=TUESDAY_1430 + timedelta(hours=1))
    assert len(await enqueue(sessions, later)) == 3


async def test_escalation_notifies_the_unit_again(sessions):
    await enqueue(sessions, event(severity=Severity.WARNING))
    added = await enqueue(sessions, event(change=AlertChange.ESCALATED))
    assert len(added) == 4


@pytest.mark.parametrize(
    "kind", ["confirmation_overdue", "delivery_failed", "deadline_at_risk", "episode_gap"]
)
def test_kinds_where_a_unit_must_act(kind):
    assert unit_must_act(kind)


@pytest.mark.parametrize("kind", ["destination_down", "silent_source", "overdue_confirmation"])
def test_kinds_for_ops_only(kind):
    assert not unit_must_act(kind)


async def test_ops_only_kinds_do_not_reach_a_unit(sessions):
    await enqueue(sessions, event(kind="silent_source"))
    assert [r.channel for r in await rows(sessions)] == ["webhook", "email", "email"]


async def test_resolved_follows_up_with_whoever_got_the_notice(sessions):
    await enqueue(
        sessions,
        event(receiver_unit_hsa="SE2120000803-HSJV", at=TUESDAY_1430 - timedelta(hours=16)),
    )
    await _sent(sessions)
    resolved = event(change=AlertChange.RESOLVED, receiver_unit_hsa="SE2120000803-HSJV")
    await enqueue(sessions, resolved)
    follow_ups = [
        r for r in await rows(sessions) if r.change == "resolved" and r.channel == "fallback-email"
    ]
    # the notice went out at night, to the unit and its on-call mailbox: both hear it is over
    assert sorted(r.recipient for r in follow_ups) == [
        "hemsjukvard.beredskap@example.se",
        "hemsjukvard.norr@example.se",
    ]
    assert all("Nu har meddelandet kommit fram." in r.body for r in follow_ups)


async def _sent(sessions):
    """The sender emailed everything queued."""
    async with sessions.begin() as session:
        await session.execute(
            update(notification).values(state="sent", sent_at=TUESDAY_1430, attempts=1)
        )


async def test_an_alarm_not_yet_emailed_when_its_alert_resolves_is_never_sent(sessions):
    await enqueue(sessions, event(receiver_unit_hsa="SE2120000803-HSJV"))
    await enqueue(
        sessions, event(change=AlertChange.RESOLVED, receiver_unit_hsa="SE2120000803-HSJV")
    )
    unit = [r for r in await rows(sessions) if r.channel == "fallback-email"]
    assert {(r.change, r.state) for r in unit} == {("opened", "superseded")}


async def test_resolved_without_an_earlier_notice_tells_the_unit_nothing(sessions):
    await enqueue(sessions, event(change=AlertChange.RESOLVED))
    assert "fallback-email" not in [r.channel for r in await rows(sessions)]


async def test_acknowledged_is_for_ops_only(sessions):
    await enqueue(sessions, event())
    await enqueue(sessions, event(change=AlertChange.ACKNOWLEDGED))
    acked = [r.channel for r in await rows(sessions) if r.change == "acknowledged"]
    assert acked == ["webhook", "email", "email"]


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        (Channels(), []),
        (Channels(webhook_url=HOOK), ["webhook"]),
        (Channels(email=True, ops_emails=("drift@example.se",)), ["email"]),
        (
            Channels(email=True, ops_emails=("drift@example.se",), fallback_notices=True),
            ["email", "fallback-email"],
        ),
        (Channels(email=False, fallback_notices=True), []),  # no SMTP, no fallback email
    ],
)
async def test_only_enabled_channels_are_queued(sessions, channels, expected):
    await enqueue(sessions, event(), channels)
    assert [r.channel for r in await rows(sessions)] == expected


async def test_an_unknown_receiving_unit_still_tells_ops(sessions):
    await enqueue(sessions, event(destination="sub-0123abcd"))
    assert [r.channel for r in await rows(sessions)] == ["webhook", "email", "email"]


async def test_a_rolled_back_alert_leaves_no_notification(sessions):
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await notifier().enqueue(session, event(), TUESDAY_1430)
            raise RuntimeError("the incident transaction failed")
    assert await rows(sessions) == []


def test_channels_from_settings():
    settings = RouterSettings(
        alert_webhook_url=HOOK,
        alert_webhook_secret="s" * 32,
        alert_smtp_host="smtp.example.se",
        alert_ops_recipients=["drift@example.se"],
    )
    assert Channels.from_settings(settings) == Channels(
        webhook_url=HOOK, ops_emails=("drift@example.se",), email=True, fallback_notices=True
    )
    assert Channels.from_settings(RouterSettings()) == Channels(fallback_notices=True)


def test_settings_refuse_a_webhook_without_a_secret_and_plain_smtp_in_production():
    with pytest.raises(ValueError, match="alert_webhook_secret"):
        RouterSettings(alert_webhook_url=HOOK)
    with pytest.raises(ValueError, match="ROUTER_ALERT_SMTP_SECURITY: 'none'"):
        RouterSettings(
            environment="production",
            **ROUTER_SECRETS,
            alert_smtp_host="smtp.example.se",
            alert_smtp_security="none",
            **SECURE_KAFKA,
            **SECURE_HTTP,
        )


async def test_a_patient_joining_an_open_incident_gets_a_fallback_notice_but_ops_no_repeat(
    sessions,
):
    """Each affected patient's receiving unit must hear; operations heard at the opening."""
    opened = event()
    assert opened.message_id is not None
    joined = replace(
        opened, change=AlertChange.AFFECTED, message_id="b" * 8 + opened.message_id[8:]
    )
    await enqueue(sessions, opened)
    await enqueue(sessions, joined)
    await enqueue(sessions, joined)  # the same patient again: queued once
    by_change: dict[str, list[str]] = {}
    for row in await rows(sessions):
        by_change.setdefault(row.change, []).append(row.channel)
    assert "fallback-email" in by_change["opened"] and "email" in by_change["opened"]
    assert by_change["affected"] == ["fallback-email"]
