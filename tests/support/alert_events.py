"""An alert event as the incident machinery announces it, raised on a weekday
afternoon."""

from dataclasses import replace
from datetime import UTC, datetime

from services.router.alerting.events import AlertChange, AlertEvent, Severity

MED3 = "SE2321000222-MED3"


TUESDAY_1430 = datetime(2026, 12, 8, 13, 30, tzinfo=UTC)  # 14.30 in Visby


MESSAGE_ID = "3f9a27c1-5b0e-4d7a-9c1e-0a1b2c3d4e5f"


def event(**overrides):
    base = AlertEvent(
        alert_id=12,
        change=AlertChange.OPENED,
        kind="delivery_failed",
        severity=Severity.CRITICAL,
        destination="treserva",
        family="admission-notice",
        summary="admission-notice messages to treserva failed permanently",
        affected=1,
        at=TUESDAY_1430,
        pseudonym="9f86d081884c7d659a2feaa0c55ad015",
        message_id=MESSAGE_ID,
        sender_unit_hsa=MED3,
    )
    return replace(base, **overrides)
