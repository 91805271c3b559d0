"""Stack.stop (sandbox/stack.py) stops every child even when one is never reaped after
SIGKILL, then fails naming it: a stuck adapter once left its stack's Kafka running."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from sandbox import stack as stack_module
from sandbox.demo import demo_settings
from sandbox.stack import Child, Stack


class _Process:
    """A child's process: exits on SIGTERM, or (stuck) on nothing at all."""

    def __init__(self, stuck: bool) -> None:
        self.stuck, self.pid = stuck, 4242
        self.signals: list[int] = []
        self.killed = False
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if not self.stuck:
            self.returncode = 0

    def kill(self) -> None:
        self.killed = True

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            raise subprocess.TimeoutExpired("child", timeout or 0)
        return self.returncode


def _child(name: str, process: _Process) -> Child:
    return Child(name, cast(Any, process), Path("/dev/null"), [], {})


def test_a_child_never_reaped_fails_the_stop_after_the_broker_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_module, "KILLED_EXIT_S", 0.01)
    s = Stack(demo_settings(tmp_path / "stack"), echo=lambda _: None)
    stuck, broker = _Process(stuck=True), _Process(stuck=False)
    s.children = [_child("adapter_takecare", stuck), _child(s.broker, broker)]
    with pytest.raises(RuntimeError, match="adapter_takecare"):
        s.stop(grace_s=0.01)
    assert stuck.killed
    assert broker.signals and broker.returncode == 0  # the broker was stopped all the same
    assert s.children == []
