"""The access log (Patientdatalagen 2008:355, HSLF-FS 2016:40): every view of patient data
by an operator, with who, when, which patient (by keyed pseudonym, never a personnummer),
what was seen and why.

The log is append-only and **hash-chained**: entry ``n`` stores ``prev_hash`` (the hash of
entry ``n - 1``, or 64 zeros for the first) and ``hash``, SHA-256 over the canonical encoding
of its own fields and ``prev_hash`` (:func:`entry_hash`). Changing, removing or reordering a
row breaks the chain at that row, which :func:`check_chain` finds offline (an auditor's
export) and :func:`verify_chain` finds in the database. A new entry takes the chain's tail
under a lock (``serialize``: an advisory lock on PostgreSQL; SQLite transactions are
``BEGIN IMMEDIATE``), and ``seq`` is unique, so two writers can never fork the chain.

Security events share the chain (:func:`record_security_event`): log-in ok and failed,
log-out, revoked sessions, refused tokens, admin actions, subscription and key changes.

The chain alone does not hold against the database's owner, who can recompute every hash
after a change: signed checkpoints of its head, kept outside the database, do
(:mod:`services.router.audit.checkpoints`).

What counts as a view of patient data: opening a message's FHIR payload, searching by
personnummer, and opening a case's timeline (every message of one stay: who was told what
about the patient, and when). Other metadata views (states, times, pseudonyms) are not
patient data here. Entries are kept at least five years
(``RouterSettings.access_log_retention_days``); nothing in the broker deletes them.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import BigId, UtcDateTime, metadata, serialize

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""

CHAIN_LOCK = "access-log-chain"

HASHED_FIELDS = ("seq", "at", "actor", "role", "kind", "pseudonym", "message_id", "reason")
"""The fields each hash covers, with ``prev_hash``: the encoding is frozen (version 1)."""


class AccessKind(enum.StrEnum):
    PAYLOAD_VIEW = "payload-view"
    PERSONNUMMER_SEARCH = "personnummer-search"
    CASE_VIEW = "case-view"  # a case's timeline (services.messaging.case)
    # security events (no patient data; pseudonym and message id stay empty)
    LOGIN_OK = "login-ok"
    LOGIN_FAILED = "login-failed"
    LOGOUT = "logout"
    SESSION_REVOKED = "session-revoked"
    TOKEN_REFUSED = "token-refused"  # noqa: S105 (an event kind, not a secret)
    ADMIN_ACTION = "admin-action"
    SUBSCRIPTION_CHANGE = "subscription-change"
    KEY_CHANGE = "key-change"

    @property
    def is_security_event(self) -> bool:
        return self not in (
            AccessKind.PAYLOAD_VIEW,
            AccessKind.PERSONNUMMER_SEARCH,
            AccessKind.CASE_VIEW,
        )


access_log = Table(
    "access_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("kind", String(30), nullable=False),  # an AccessKind value
    Column("pseudonym", String(32), nullable=True),
    Column("message_id", String(36), nullable=True),
    Column("reason", String(500), nullable=False),
    # the chain: position (1, 2, …; unique, so a fork cannot be stored), link and own hash
    Column("seq", BigId, nullable=False, unique=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_access_log_at", "at"),
    Index("ix_access_log_pseudonym", "pseudonym", "at"),
)


@dataclass(frozen=True, slots=True)
class Access:
    actor: str
    role: str
    kind: AccessKind
    reason: str
    pseudonym: str | None = None
    message_id: str | None = None


def canonical_time(at: datetime) -> str:
    """UTC, microseconds, ``Z``: one spelling for one instant on every backend."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of ``{HASHED_FIELDS…, "prev_hash"}`` as JSON with sorted keys, no
    spaces, UTF-8 (non-ASCII kept). ``at`` is a datetime or its :func:`canonical_time`."""
    doc: dict[str, Any] = {name: fields[name] for name in HASHED_FIELDS}
    if isinstance(doc["at"], datetime):
        doc["at"] = canonical_time(doc["at"])
    doc["seq"] = int(doc["seq"])
    doc["prev_hash"] = prev_hash
    encoded = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


async def record_access(session: AsyncSession, access: Access, *, now: datetime) -> int:
    """Append the entry in the caller's transaction, before the data is shown."""
    await serialize(session, CHAIN_LOCK)
    tail = (
        await session.execute(
            select(access_log.c.seq, access_log.c.hash).order_by(access_log.c.seq.desc()).limit(1)
        )
    ).first()
    seq, prev = (int(tail.seq) + 1, str(tail.hash)) if tail else (1, GENESIS)
    fields: dict[str, Any] = {
        "seq": seq,
        "at": now,
        "actor": access.actor,
        "role": access.role,
        "kind": access.kind.value,
        "pseudonym": access.pseudonym,
        "message_id": access.message_id,
        "reason": access.reason,
    }
    result = await session.execute(
        access_log.insert()
        .returning(access_log.c.id)
        .values(**fields, prev_hash=prev, hash=entry_hash(fields, prev))
    )
    return int(result.scalar_one())


async def record_security_event(
    session: AsyncSession,
    *,
    actor: str,
    role: str,
    kind: AccessKind,
    reason: str,
    now: datetime,
) -> int:
    """A security event (log-in, log-out, a refused token, an admin action, a subscription
    or key change) on the same chain as the views of patient data, in the caller's
    transaction. ``reason`` says what happened and from where; it never holds patient data
    or a secret."""
    if not kind.is_security_event:
        raise ValueError(f"{kind.value} is a view of patient data, not a security event")
    return await record_access(
        session, Access(actor=actor[:100], role=role, kind=kind, reason=reason[:500]), now=now
    )


class ChainProblem(enum.StrEnum):
    MISSING = "missing"  # a position is absent: a row removed (or the log reordered)
    LINK = "broken-link"  # prev_hash is not the previous row's hash
    TAMPERED = "tampered"  # the row's fields no longer give its hash


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of walking the chain. ``first_bad_seq`` is the first position at which
    it breaks (None: intact). ``tail_hash`` is the last good hash: an auditor who kept an
    earlier tail can check that it still appears (a removed tail shows only so)."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    tail_seq: int = 0
    tail_hash: str = GENESIS

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "firstBadSeq": self.first_bad_seq,
            "problem": self.problem.value if self.problem else None,
            "tailSeq": self.tail_seq,
            "tailHash": self.tail_hash,
        }


class ChainCheck:
    """Walks entries one at a time in ``seq`` order and stops at the first break, so a
    five-year log is checked without holding it in memory."""

    def __init__(self) -> None:
        self._seq, self._prev, self._checked = 1, GENESIS, 0
        self._bad: tuple[int, ChainProblem] | None = None

    def feed(self, entry: Mapping[str, Any]) -> bool:
        """Check one entry; False once the chain is broken (stop feeding)."""
        if self._bad is not None:
            return False
        problem: ChainProblem | None = None
        if int(entry["seq"]) != self._seq:
            problem = ChainProblem.MISSING
        elif entry["prev_hash"] != self._prev:
            problem = ChainProblem.LINK
        elif entry_hash(entry, self._prev) != entry["hash"]:
            problem = ChainProblem.TAMPERED
        if problem is not None:
            self._bad = (self._seq, problem)
            return False
        self._prev, self._seq, self._checked = str(entry["hash"]), self._seq + 1, self._checked + 1
        return True

    def report(self) -> ChainReport:
        bad_seq, problem = self._bad if self._bad else (None, None)
        return ChainReport(
            ok=self._bad is None,
            checked=self._checked,
            first_bad_seq=bad_seq,
            problem=problem,
            tail_seq=self._seq - 1,
            tail_hash=self._prev,
        )


def check_chain(entries: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Pure: an auditor can run it on a JSON-lines export (entries in ``seq`` order)."""
    walk = ChainCheck()
    for entry in entries:
        if not walk.feed(entry):
            break
    return walk.report()


async def iter_entries(
    session: AsyncSession, *, batch: int = 1000
) -> AsyncGenerator[dict[str, Any], None]:
    """Every entry in chain order, ``at`` as its canonical string, read in batches."""
    after = 0
    while True:
        rows = (
            await session.execute(
                select(access_log)
                .where(access_log.c.seq > after)
                .order_by(access_log.c.seq)
                .limit(batch)
            )
        ).all()
        for row in rows:
            entry = dict(row._mapping)
            entry["at"] = canonical_time(entry["at"])
            yield entry
        if len(rows) < batch:
            return
        after = int(rows[-1].seq)


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Walk the stored chain; finds the first changed, removed or reordered entry."""
    walk = ChainCheck()
    async with aclosing(iter_entries(session)) as entries:
        async for entry in entries:
            if not walk.feed(entry):
                break
    return walk.report()


async def list_access(
    session: AsyncSession,
    *,
    limit: int = 200,
    pseudonym: str | None = None,
    kinds: Iterable[AccessKind] | None = None,
) -> list[dict[str, Any]]:
    """Entries newest first, of one patient (pseudonym) or of some kinds if asked."""
    query = select(access_log).order_by(access_log.c.seq.desc()).limit(limit)
    if pseudonym is not None:
        query = query.where(access_log.c.pseudonym == pseudonym)
    if kinds is not None:
        query = query.where(access_log.c.kind.in_([k.value for k in kinds]))
    rows = (await session.execute(query)).all()
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]
