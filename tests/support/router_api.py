"""The router API's ops token, a valid subscription body, and the number of subscriptions stored."""

from __future__ import annotations

from sqlalchemy import func, select

from services.router.routing.tables import subscription

TOKEN = {"authorization": "Bearer sandbox-ops-token"}


SUBSCRIPTION = {
    "name": "Regionens kommunikationsplattform",
    "criteria": {"events": ["admission-notice"]},
    "channel": {"type": "rest-hook", "endpoint": "https://platform.example.se/hooks/cb"},
    "secret": "platform-secret-0123456789",
}


async def _subscriptions(sessions) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(subscription)) or 0)
