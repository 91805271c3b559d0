"""What an operator or admin changes, on the access log's chain (a security event beside the
views of patient data): payload-key rotation (``key-change``), pruning, replays and closed
deliveries (``admin-action``). Written in the action's own transaction, so an action that
rolls back leaves no entry and one that commits cannot lack its entry. ``detail`` says what
was done and to how much; it never holds patient data or a secret."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.router.audit.access_log import AccessKind, record_security_event
from services.router.routing.replay import ReplayOutcome


async def record_admin_action(
    session: AsyncSession,
    *,
    actor: str,
    role: str,
    action: str,
    detail: str,
    now: datetime,
    kind: AccessKind = AccessKind.ADMIN_ACTION,
) -> int:
    """One entry ``<action>: <detail>`` in the caller's transaction."""
    return await record_security_event(
        session, actor=actor, role=role, kind=kind, reason=f"{action}: {detail}", now=now
    )


def replay_summary(outcomes: Sequence[ReplayOutcome], reason: str, *, force: bool) -> str:
    """A replay's entry: how many replayed and refused, the first message ids, why."""
    replayed = [o.message_id for o in outcomes if o.replayed]
    shown = ", ".join(replayed[:5]) + (
        f" and {len(replayed) - 5} more" if len(replayed) > 5 else ""
    )
    refused = sum(not o.replayed for o in outcomes)
    forced = " (forced)" if force else ""
    return f"{len(replayed)} replayed{forced} [{shown}], {refused} refused; why: {reason}"
