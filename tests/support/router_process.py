"""The router's HTTP app in a process of its own (``python -m tests.browser.serve``) on a real
socket of 127.0.0.1, over a database the test has filled: what the browser tests point
Chromium at."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def wait_until_up(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    """Poll ``url``'s /health until it answers 200; fail if ``proc`` exits first."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the router app exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling with a deadline
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


@contextlib.contextmanager
def served_router(
    database_url: str, port: int, more: dict[str, Any] | None = None
) -> Iterator[str]:
    """The router app on ``port`` until the block ends (``more``: further sandbox settings);
    yields its base URL once it answers."""
    args = [sys.executable, "-m", "tests.browser.serve", database_url, str(port)]
    if more:
        args.append(json.dumps(more))
    # the app's settings come from its arguments, not from the test process's ROUTER_ variables
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
