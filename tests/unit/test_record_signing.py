"""Signed Kafka records: what a consumer accepts and what it quarantines."""

from __future__ import annotations

import pytest

from services.messaging.kafka import IncomingRecord, verified
from services.messaging.record_signing import (
    SIGNATURE_HEADER,
    BadRecordSignature,
    MalformedSignature,
    RecordSigner,
    RecordVerifier,
    UnknownSigningKey,
    UnsignedRecord,
    WrongSigner,
    load_private,
    load_public,
    new_signing_key,
    parse_signing_key,
    public_entry,
)

pytestmark = pytest.mark.security

TOPIC, OTHER = "carebridge.results.v1", "carebridge.inbound.v1"


def _signer(service: str, key_id: str = "k1") -> tuple[RecordSigner, str]:
    setting = f"{key_id}:{new_signing_key()}"
    kid, private = parse_signing_key(setting)
    return RecordSigner(service, kid, private), setting


def _verifier(*settings: tuple[str, str], writers: frozenset[str]) -> RecordVerifier:
    trusted: dict[str, dict[str, object]] = {}
    for service, setting in settings:
        kid, public = public_entry(setting)
        trusted.setdefault(service, {})[kid] = load_public(public)
    return RecordVerifier(trusted, {TOPIC: writers})  # type: ignore[arg-type]


def _signed(signer: RecordSigner, value: bytes = b'{"a": 1}') -> dict[str, str]:
    headers = {"message-id": "m-1", "attempt": "1"}
    headers[SIGNATURE_HEADER] = signer.sign(TOPIC, "key-1", headers, value)
    return headers


def test_a_signed_record_names_its_signer():
    signer, setting = _signer("adapter_treserva")
    verifier = _verifier(("adapter_treserva", setting), writers=frozenset({"adapter_treserva"}))
    assert verifier.verify(TOPIC, "key-1", _signed(signer), b'{"a": 1}') == "adapter_treserva"


@pytest.mark.parametrize(
    ("topic", "key", "change", "value"),
    [
        (TOPIC, "key-1", {}, b'{"a": 2}'),  # the value changed
        (TOPIC, "key-2", {}, b'{"a": 1}'),  # the key changed
        (TOPIC, "key-1", {"attempt": "9"}, b'{"a": 1}'),  # a header changed
        (TOPIC, "key-1", {"delivery-id": "7"}, b'{"a": 1}'),  # a header added
        (OTHER, "key-1", {}, b'{"a": 1}'),  # moved to another topic
    ],
)
def test_any_change_breaks_the_signature(topic, key, change, value):
    signer, setting = _signer("adapter_treserva")
    verifier = RecordVerifier(
        {"adapter_treserva": {"k1": load_public(public_entry(setting)[1])}},
        {TOPIC: frozenset({"adapter_treserva"}), OTHER: frozenset({"adapter_treserva"})},
    )
    headers = {**_signed(signer), **change}
    with pytest.raises(BadRecordSignature):
        verifier.verify(topic, key, headers, value)


def test_unsigned_malformed_unknown_and_forged_records_are_refused_by_class():
    _, setting = _signer("adapter_treserva")
    verifier = _verifier(("adapter_treserva", setting), writers=frozenset({"adapter_treserva"}))
    with pytest.raises(UnsignedRecord):
        verifier.verify(TOPIC, "key-1", {"message-id": "m-1"}, b"{}")
    with pytest.raises(MalformedSignature):
        verifier.verify(TOPIC, "key-1", {SIGNATURE_HEADER: "v1;only-two"}, b"{}")
    with pytest.raises(MalformedSignature):
        verifier.verify(TOPIC, "key-1", {SIGNATURE_HEADER: "v1;adapter_treserva;k1;%%%"}, b"{}")
    forger = RecordSigner("adapter_treserva", "k1", load_private(new_signing_key()))
    with pytest.raises(BadRecordSignature):  # the right name and key id, the forger's key
        verifier.verify(TOPIC, "key-1", _signed(forger), b'{"a": 1}')
    stranger, _ = _signer("adapter_treserva", key_id="k9")
    with pytest.raises(UnknownSigningKey):
        verifier.verify(TOPIC, "key-1", _signed(stranger), b'{"a": 1}')


def test_a_trusted_service_may_not_write_a_topic_that_is_not_its_own():
    router, setting = _signer("router")
    verifier = _verifier(("router", setting), writers=frozenset({"adapter_treserva"}))
    with pytest.raises(WrongSigner):  # the router cannot pass off a receipt as a journal's
        verifier.verify(TOPIC, "key-1", _signed(router), b'{"a": 1}')


def test_during_a_rotation_both_keys_are_trusted():
    old, old_setting = _signer("adapter_takecare", "2026-1")
    new, new_setting = _signer("adapter_takecare", "2026-2")
    verifier = _verifier(
        ("adapter_takecare", old_setting),
        ("adapter_takecare", new_setting),
        writers=frozenset({"adapter_takecare"}),
    )
    for signer in (old, new):
        assert verifier.verify(TOPIC, "key-1", _signed(signer), b'{"a": 1}') == "adapter_takecare"


def test_the_consumer_marks_untrusted_records_instead_of_dropping_them():
    signer, setting = _signer("adapter_treserva")
    verifier = _verifier(("adapter_treserva", setting), writers=frozenset({"adapter_treserva"}))
    good = IncomingRecord(TOPIC, 0, 1, "key-1", b'{"a": 1}', _signed(signer))
    bad = IncomingRecord(TOPIC, 0, 2, "key-1", b'{"a": 1}', {"message-id": "m-1"})
    checked = verified([good, bad], verifier)
    assert [(r.offset, r.signer, r.untrusted is None) for r in checked] == [
        (1, "adapter_treserva", True),
        (2, None, False),
    ]
    assert checked[1].untrusted is not None and "UnsignedRecord" in checked[1].untrusted
