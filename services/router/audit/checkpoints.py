"""Signed checkpoints of the access log's chain head, kept outside the database.

The hash chain (:mod:`services.router.audit.access_log`) finds an edit by anyone who cannot
recompute hashes. The database's owner can: change an entry, recompute every later
``hash`` and ``prev_hash``, and :func:`~services.router.audit.access_log.verify_chain`
accepts the forgery. So the router signs the chain's head, ``{seq, hash, at, keyId}``, with
an Ed25519 key of its own (``ROUTER_AUDIT_CHECKPOINT_KEY``, never the Kafka record key) every
``ROUTER_AUDIT_CHECKPOINT_EVERY_S`` when the head moved, and writes it where the database's
owner cannot reach (:mod:`services.router.audit.checkpoint_sinks`: an append-only file,
syslog). :func:`check_against_checkpoints` then proves a rewrite: the stored hash at a
checkpoint's ``seq`` differs from the signed one (an entry at or before it was changed), or
the chain ends before a checkpoint's ``seq`` (entries were removed from the end).

A checkpoint line is JSON: ``{"v": 1, "seq", "hash", "at", "keyId", "sig"}``, where ``sig`` is
base64 of the Ed25519 signature over :meth:`Checkpoint.signed_bytes` (the other fields as
JSON with sorted keys, no spaces). Checkpoints are written by the replica holding the
watchdog's lease only (:mod:`services.router.routing.watchdog_lease`).

What a checkpoint line can be found to be (:class:`CheckpointProblem`): malformed, signed by
an unknown key, a bad signature (a forged or edited line), not matching the stored chain,
or beyond the chain's end (truncated).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.record_signing import load_public, parse_signing_key
from services.router.audit.access_log import (
    ChainCheck,
    ChainReport,
    access_log,
    canonical_time,
)

VERSION = 1


def sandbox_checkpoint_key() -> str:
    """``<key id>:<base64 private key>`` of the sandbox, from a published seed: refused
    outside the sandbox (anyone can sign with it)."""
    import hashlib

    seed = hashlib.sha256(b"carebridge-sandbox-access-log-checkpoints").digest()
    return f"sandbox-audit-1:{base64.b64encode(seed).decode()}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: str  # canonical UTC time (access_log.canonical_time)
    key_id: str

    def signed_bytes(self) -> bytes:
        doc = {"v": VERSION, "seq": self.seq, "hash": self.hash, "at": self.at}
        doc["keyId"] = self.key_id
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class CheckpointSigner:
    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_setting(cls, setting: str) -> CheckpointSigner:
        """``<key id>:<base64 of 32 bytes>``, the format of the record signing keys."""
        key_id, private = parse_signing_key(setting)
        return cls(key_id, private)

    def public_key_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def trusted(self) -> dict[str, Ed25519PublicKey]:
        """This signer's public key, as :func:`check_against_checkpoints` takes it."""
        return {self.key_id: self.private_key.public_key()}

    def line(self, seq: int, hash_: str, at: datetime) -> str:
        """One signed checkpoint as a JSON line (no newline)."""
        point = Checkpoint(seq, hash_, canonical_time(at), self.key_id)
        sig = base64.b64encode(self.private_key.sign(point.signed_bytes())).decode()
        doc = {"v": VERSION, "seq": seq, "hash": hash_, "at": point.at, "keyId": self.key_id}
        return json.dumps({**doc, "sig": sig}, separators=(",", ":"))


def trusted_keys(entries: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """``<key id>:<base64 public key>`` each (the CLI's ``--public-key``) → key id → key."""
    found: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError("a checkpoint public key is '<key id>:<base64 Ed25519 public key>'")
        found[key_id] = load_public(encoded)
    return found


async def chain_head(session: AsyncSession) -> tuple[int, str] | None:
    """The last entry's ``(seq, hash)``, or None for an empty log."""
    row = (
        await session.execute(
            select(access_log.c.seq, access_log.c.hash).order_by(access_log.c.seq.desc()).limit(1)
        )
    ).first()
    return None if row is None else (int(row.seq), str(row.hash))


class CheckpointProblem(enum.StrEnum):
    MALFORMED = "malformed"  # not a checkpoint line
    UNKNOWN_KEY = "unknown-key"  # signed by a key id not trusted here
    BAD_SIGNATURE = "bad-signature"  # a forged or edited checkpoint line
    MISMATCH = "mismatch"  # the stored chain's hash at seq is not the signed one: rewritten
    TRUNCATED = "truncated"  # the chain ends before seq: entries removed from its end


@dataclass(frozen=True, slots=True)
class CheckpointFinding:
    line: int  # 1-based line of the checkpoint file(s)
    problem: CheckpointProblem
    seq: int | None = None
    at: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "problem": self.problem.value,
            "seq": self.seq,
            "at": self.at,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class CheckpointReport:
    """The chain walk and, beside it, every checkpoint's verdict. ``first_mismatch`` is the
    earliest checkpoint (by seq) the stored chain no longer reaches or matches."""

    chain: ChainReport
    checkpoints: int  # lines read
    matched: int  # validly signed checkpoints the chain matches
    findings: tuple[CheckpointFinding, ...]

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.findings

    @property
    def first_mismatch(self) -> CheckpointFinding | None:
        broken = [
            f
            for f in self.findings
            if f.problem in (CheckpointProblem.MISMATCH, CheckpointProblem.TRUNCATED)
        ]
        return min(broken, key=lambda f: (f.seq or 0, f.line)) if broken else None

    def as_dict(self) -> dict[str, Any]:
        first = self.first_mismatch
        return {
            "ok": self.ok,
            "checkpoints": self.checkpoints,
            "matched": self.matched,
            "firstMismatch": None if first is None else first.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
        }


def _read(
    number: int, text: str, trusted: Mapping[str, Ed25519PublicKey]
) -> Checkpoint | CheckpointFinding:
    try:
        doc = json.loads(text)
        point = Checkpoint(int(doc["seq"]), str(doc["hash"]), str(doc["at"]), str(doc["keyId"]))
        signature = base64.b64decode(str(doc["sig"]), validate=True)
        if doc.get("v") != VERSION:
            raise ValueError("not version 1")
    except (ValueError, KeyError, TypeError, binascii.Error):
        return CheckpointFinding(number, CheckpointProblem.MALFORMED, detail="not a checkpoint")
    public = trusted.get(point.key_id)
    if public is None:
        return CheckpointFinding(
            number, CheckpointProblem.UNKNOWN_KEY, point.seq, point.at, point.key_id[:40]
        )
    try:
        public.verify(signature, point.signed_bytes())
    except InvalidSignature:
        return CheckpointFinding(number, CheckpointProblem.BAD_SIGNATURE, point.seq, point.at)
    return point


class CheckpointCheck:
    """Walks the chain (as :class:`ChainCheck`) and compares each validly signed checkpoint
    with the entry at its ``seq``, one entry at a time. The whole chain is fed, even past a
    break, so a truncation is still told apart from a rewrite."""

    def __init__(self, lines: Iterable[str], trusted: Mapping[str, Ed25519PublicKey]) -> None:
        self._chain, self._chain_open = ChainCheck(), True
        self._findings: list[CheckpointFinding] = []
        self._wanted: dict[int, list[tuple[int, Checkpoint]]] = {}
        self._lines = self._matched = self._last_seq = 0
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            self._lines += 1
            read = _read(number, text, trusted)
            if isinstance(read, CheckpointFinding):
                self._findings.append(read)
            else:
                self._wanted.setdefault(read.seq, []).append((number, read))

    def feed(self, entry: Mapping[str, Any]) -> None:
        if self._chain_open:
            self._chain_open = self._chain.feed(entry)
        seq = int(entry["seq"])
        self._last_seq = max(self._last_seq, seq)
        for number, point in self._wanted.pop(seq, []):
            if entry["hash"] == point.hash:
                self._matched += 1
                continue
            self._findings.append(
                CheckpointFinding(
                    number,
                    CheckpointProblem.MISMATCH,
                    point.seq,
                    point.at,
                    "the stored chain's hash differs from the signed one",
                )
            )

    def report(self) -> CheckpointReport:
        findings = list(self._findings)
        for seq, points in self._wanted.items():  # never fed: past the end, or a gap
            beyond = seq > self._last_seq
            problem = CheckpointProblem.TRUNCATED if beyond else CheckpointProblem.MISMATCH
            detail = f"the chain ends at {self._last_seq}" if beyond else "no entry at this seq"
            findings += [CheckpointFinding(n, problem, seq, p.at, detail) for n, p in points]
        findings.sort(key=lambda f: f.line)
        return CheckpointReport(self._chain.report(), self._lines, self._matched, tuple(findings))


def check_against_checkpoints(
    entries: Iterable[Mapping[str, Any]],
    lines: Iterable[str],
    trusted: Mapping[str, Ed25519PublicKey],
) -> CheckpointReport:
    """Pure: the chain (in ``seq`` order, e.g. an export) against checkpoint lines."""
    walk = CheckpointCheck(lines, trusted)
    for entry in entries:
        walk.feed(entry)
    return walk.report()


async def check_stream_against_checkpoints(
    entries: AsyncIterable[Mapping[str, Any]],
    lines: Iterable[str],
    trusted: Mapping[str, Ed25519PublicKey],
) -> CheckpointReport:
    """:func:`check_against_checkpoints` over the database's entries
    (:func:`~services.router.audit.access_log.iter_entries`)."""
    walk = CheckpointCheck(lines, trusted)
    async for entry in entries:
        walk.feed(entry)
    return walk.report()
