"""free_port hands out ports no outgoing connection can take before a child binds them."""

from __future__ import annotations

import random
import socket

import pytest

from sandbox import stack
from sandbox.stack import _ephemeral_low, free_port


def test_ports_come_from_below_the_ephemeral_range_and_bind() -> None:
    low = _ephemeral_low()
    for _ in range(20):
        port = free_port()
        assert 10000 <= port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_is_never_handed_out_twice_in_one_process() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        choices = iter([taken, free])
        monkeypatch.setattr(stack, "_handed_out", set())
        monkeypatch.setattr(stack, "_ephemeral_low", lambda: 1 << 16)
        monkeypatch.setattr(random, "randrange", lambda _a, _b: next(choices))
        assert free_port() == free


@pytest.mark.parametrize("index", [0, 1])
def test_side_by_side_workers_take_ports_from_their_own_part(
    monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    low = _ephemeral_low()
    width = (low - 10000) // 2
    monkeypatch.setenv(stack.PORT_SLICE_ENV, f"{index}/2")
    for _ in range(50):
        assert 10000 + index * width <= free_port() < 10000 + (index + 1) * width


@pytest.mark.parametrize("spec", ["2/2", "a/b", "1"])
def test_a_malformed_port_slice_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.setenv(stack.PORT_SLICE_ENV, spec)
    with pytest.raises(stack.StackError, match=stack.PORT_SLICE_ENV):
        free_port()
