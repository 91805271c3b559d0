"""Webhook signatures: what a receiver must accept and what it must refuse."""

import hashlib
import hmac

import pytest

from services.messaging.signing import (
    BadSignature,
    MalformedSignature,
    SignatureError,
    SignatureTooOld,
    sign,
    verify,
)

SECRET = "a-subscriber-secret-of-32-chars!"
BODY = b'{"resourceType":"Bundle","type":"message"}'
T = 1_790_000_000


def test_a_signature_is_the_documented_hmac_over_timestamp_and_body():
    header = sign(SECRET, BODY, T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify(SECRET, BODY, header, now=T + 10) == T


def test_a_tampered_body_is_refused():
    header = sign(SECRET, BODY, T)
    with pytest.raises(BadSignature):
        verify(SECRET, BODY.replace(b"message", b"history"), header, now=T)


def test_a_wrong_secret_is_refused():
    header = sign("another-secret-entirely-16+", BODY, T)
    with pytest.raises(BadSignature):
        verify(SECRET, BODY, header, now=T)


def test_a_changed_timestamp_breaks_the_signature():
    mac = sign(SECRET, BODY, T).split("v1=")[1]
    with pytest.raises(BadSignature):
        verify(SECRET, BODY, f"t={T + 60},v1={mac}", now=T + 60)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_timestamp_outside_the_tolerance_is_refused(offset):
    header = sign(SECRET, BODY, T)
    with pytest.raises(SignatureTooOld):
        verify(SECRET, BODY, header, now=T + offset)
    assert verify(SECRET, BODY, header, now=T + offset, tolerance_s=100_000) == T


def test_one_matching_v1_among_several_is_enough_for_secret_rotation():
    old = sign("the-old-secret-of-16-chars", BODY, T).split("v1=")[1]
    header = f"{sign(SECRET, BODY, T)},v1={old}"
    assert verify(SECRET, BODY, header, now=T) == T
    assert verify("the-old-secret-of-16-chars", BODY, header, now=T) == T


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", f"t={T}", "v1=abc", "t=soon,v1=abc", f"t={T},t={T},v1=abc"],
)
def test_a_malformed_header_is_refused(header):
    with pytest.raises(MalformedSignature):
        verify(SECRET, BODY, header, now=T)


def test_every_refusal_is_a_signature_error():
    for cls in (MalformedSignature, BadSignature, SignatureTooOld):
        assert issubclass(cls, SignatureError)
