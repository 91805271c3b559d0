"""The supervisor restarts a service that dies again while starting (as the router may
right after a broker restart), and gives up only when it keeps dying."""

import sys
import time
from pathlib import Path

import pytest

from sandbox.demo import demo_settings
from sandbox.stack import Stack, StackError

DIES = [sys.executable, "-c", "raise SystemExit(1)"]


def wait_exited(stack: Stack, name: str) -> None:
    deadline = time.monotonic() + 10
    while stack.child(name).process.poll() is None:
        assert time.monotonic() < deadline, f"{name} did not exit"
        time.sleep(0.01)


def test_a_service_dying_while_it_starts_is_restarted_until_it_keeps_dying(tmp_path: Path):
    stack = Stack(demo_settings(tmp_path / "stack"), echo=lambda _: None)
    (stack.settings.data_dir / "logs").mkdir(parents=True)
    stack._spawn("router", DIES, {})
    wait_exited(stack, "router")
    for attempt in range(5):  # each restart dies during its start: tried again next time
        assert stack.revive() == ["router"], attempt
        wait_exited(stack, "router")
    with pytest.raises(StackError, match="router exited 5 times within a minute"):
        stack.revive()
