"""`make run`'s supervisor: starts everything, prints URLs and credentials, and on Ctrl-C
stops every process it started."""

import os
import signal
import subprocess
import sys
import time

import pytest

from sandbox.demo import demo_settings

pytestmark = [pytest.mark.e2e, pytest.mark.database_independent]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def test_run_prints_urls_and_ctrl_c_leaves_no_process_behind(tmp_path):
    settings = demo_settings(tmp_path)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        **{f"STACK_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.stack", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Confirmation deadline" in line:
            break
    banner = "".join(lines)
    assert f"http://127.0.0.1:{settings.router_port}" in banner, banner
    assert "sandbox-takecare-key" in banner and "sandbox-ops-token" in banner
    assert f"http://127.0.0.1:{settings.router_port}/console/" in banner
    children = _children(proc.pid)
    # tansu, router, two adapters, three simulators, and the sandbox's OIDC provider when
    # it is installed (make run and make test install it; the banner says which)
    provider = "identity provider (OIDC) http" in banner
    assert provider or "identity provider        not started" in banner, banner
    assert len(children) == 7 + provider
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "no processes left behind" in rest
    assert [pid for pid in children if _alive(pid)] == []
