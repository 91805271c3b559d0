"""When the router's watchdog raises, reminds and holds incidents (its part of the tick's
rules; the routing rules are in services.router.routing.deliveries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.router.alerting.incidents import ReminderPolicy
from services.router.alerting.silence import SilenceRule


@dataclass(frozen=True)
class AlertingRules:
    reminders: ReminderPolicy = field(default_factory=ReminderPolicy)
    silence: tuple[SilenceRule, ...] = ()  # silent-source rules, checked every silence_every
    silence_every: timedelta = timedelta(minutes=1)
    destination_down_after: timedelta = timedelta(minutes=10)  # circuit open this long: alert
    # after a jump of the wall clock, new alerts wait this long
    # (services.router.routing.clock_jumps)
    alert_hold: timedelta = timedelta(minutes=15)
