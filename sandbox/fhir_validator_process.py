"""The project's FHIR R4 validator (tools/fhir-validator: HAPI FHIR on the JVM, offline) as a
process: built once, run in batch over files, or served on loopback for many messages.

``python -m sandbox.fhir_validator_process`` (part of ``make contracts``)
    In one JVM: every conformance resource (``contracts/fhir/*.json``) and every FHIR golden
    (``contracts/fixtures/**/*.fhir.json``), validated against R4 and the conformance
    resources by HAPI's FhirInstanceValidator, must have no error; every spoiled message of
    the negative set (``contracts/fhir-negative/``, :mod:`sandbox.fhir_negative`) must be
    rejected with the error its ``expected.json`` names. Prints each error, a summary grouped
    by message and the negative set's verdicts; exits 1 on any failure. ``--json`` prints
    the validator's lines. Given files, validates just those.

The jar is built by ``make fhir-validator`` into .cache/fhir-validator-<hapi.version>/
(fhir-validator.jar beside libs/); :func:`ensure_built` runs the same mvn command, under
the same stamp file, when the stamp is older than the pom or a source file.

    with FhirValidatorServer() as server:          # one JVM, warm, on a free loopback port
        client = HttpFhirValidator(server.base_url)  # services/messaging/fhir_validator.py

    batch_verdict(bundle)   # one resource in batch mode: the same verdict, no server

A JVM's start costs about 90 s of CPU (the R4 core definitions, the profiles' snapshots), so
with ``FHIR_VALIDATOR_URL`` naming a running server (``make validate
FHIR_VALIDATOR_URL=http://127.0.0.1:8090``), batch mode asks it, file by file, instead of
starting one; ``make test`` runs one server for all its tests (tests/support/validator_session.py).

Call ``start()`` from a thread that outlives the server: PR_SET_PDEATHSIG ends the JVM when
the thread that started it exits.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from sandbox import fhir_negative
from sandbox.stack import _die_with_parent, free_port
from services.messaging.fhir_validator import FhirVerdict, outcome_from_rows, verdict_from_outcome

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tools" / "fhir-validator"
POM = PROJECT / "pom.xml"
IG = ROOT / "contracts" / "fhir"
GOLDENS = ROOT / "contracts" / "fixtures"
# two cores and other work beside it: a modest heap, the serial collector
JVM_OPTS = ["-Xms128m", "-Xmx1g", "-XX:+UseSerialGC"]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class FhirValidatorProcessError(RuntimeError):
    """The validator could not be built, started or run."""


def hapi_version() -> str:
    """The HAPI FHIR version tools/fhir-validator/pom.xml pins (the Makefile reads the same)."""
    found = re.search(r"<hapi\.version>([^<]+)</hapi\.version>", POM.read_text())
    if found is None:
        raise FhirValidatorProcessError(f"no <hapi.version> in {POM}")
    return found.group(1).strip()


def cache_dir() -> Path:
    return ROOT / ".cache" / f"fhir-validator-{hapi_version()}"


def _sources() -> list[Path]:
    return [POM, *(p for p in (PROJECT / "src").rglob("*") if p.is_file())]


def ensure_built() -> Path:
    """The jar; built first, exactly as ``make fhir-validator`` does (same mvn command, same
    stamp file), if it is missing or older than the pom or a source file."""
    cache = cache_dir()
    jar, stamp = cache / "fhir-validator.jar", cache / ".built"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:  # two test processes must not both run mvn
        fcntl.flock(lock, fcntl.LOCK_EX)
        newest = max(p.stat().st_mtime for p in _sources())
        if stamp.exists() and jar.exists() and stamp.stat().st_mtime >= newest:
            return jar
        mvn = shutil.which("mvn")
        if mvn is None:
            raise FhirValidatorProcessError("the validator is not built and mvn is missing")
        argv = [mvn, "-q", "-B", "-f", str(POM), "package", f"-Dvalidator.out={cache}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise FhirValidatorProcessError(
                f"`make fhir-validator` (mvn) failed:\n{done.stdout[-3000:]}{done.stderr}"
            )
        stamp.touch()
        return jar


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise FhirValidatorProcessError("java is missing (OpenJDK 17 or newer)")
    return java


@dataclass(frozen=True, slots=True)
class FileReport:
    """One line of the validator's batch output."""

    file: str
    errors: int
    warnings: int
    issues: tuple[dict[str, Any], ...]


SERVER_URL_ENV = "FHIR_VALIDATOR_URL"


def running_server() -> str | None:
    """The base URL of a validator server already running (``FHIR_VALIDATOR_URL``), if any."""
    return os.environ.get(SERVER_URL_ENV) or None


def rows_from_outcome(outcome: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The batch output's issue rows for the server's OperationOutcome (the inverse of
    :func:`outcome_from_rows`): its lone "no issues" information is no row."""
    issues = outcome.get("issue") or []
    if len(issues) == 1 and issues[0].get("code") == "informational":
        return ()
    rows = []
    for issue in issues:
        row = {"severity": issue["severity"], "code": issue.get("code") or "processing"}
        row["message"] = issue.get("diagnostics") or ""
        for key in ("location", "expression"):
            if issue.get(key):
                row[key] = issue[key][0]
        rows.append(row)
    return tuple(rows)


def _ask_server(files: Sequence[Path], base_url: str) -> list[FileReport]:
    """The same reports from a running server, one POST per file."""
    reports = []
    with httpx.Client(base_url=base_url, timeout=120.0) as client:
        for f in files:
            response = client.post(
                "/validate",
                content=f.read_bytes(),
                headers={"Content-Type": "application/fhir+json"},
            )
            if response.status_code != 200:
                raise FhirValidatorProcessError(
                    f"the validator at {base_url} answered {response.status_code} for {f}"
                )
            rows = rows_from_outcome(response.json())
            reports.append(
                FileReport(
                    file=str(f),
                    errors=sum(r["severity"] in ("error", "fatal") for r in rows),
                    warnings=sum(r["severity"] == "warning" for r in rows),
                    issues=rows,
                )
            )
    return reports


def run_batch(
    files: Sequence[Path], *, ig: Path = IG, server_url: str | None = None
) -> list[FileReport]:
    """Validates ``files`` in one JVM, or with ``server_url`` (a server started on ``ig``)
    by that server; one report per file, in the order given."""
    if not files:
        return []
    if server_url is not None:
        return _ask_server(files, server_url)
    argv = [_java(), *JVM_OPTS, "-jar", str(ensure_built()), "--ig", str(ig)]
    argv += [str(f) for f in files]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode not in (0, 1):
        raise FhirValidatorProcessError(f"the validator failed ({done.returncode}):\n{done.stderr}")
    reports = [
        FileReport(
            file=row["file"],
            errors=row["errors"],
            warnings=row["warnings"],
            issues=tuple(row["issues"]),
        )
        for row in map(json.loads, done.stdout.splitlines())
    ]
    if len(reports) != len(files):
        raise FhirValidatorProcessError(f"{len(files)} files, {len(reports)} reports")
    return reports


class FhirValidatorServer:
    """``java -jar fhir-validator.jar --serve`` on a free loopback port, warm once started."""

    def __init__(
        self, *, ig: Path = IG, port: int | None = None, startup_timeout_s: float = 120.0
    ) -> None:
        self.ig = ig
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.started_in_s: float | None = None
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FhirValidatorServer:
        jar = ensure_built()
        argv = [_java(), *JVM_OPTS, "-jar", str(jar), "--ig", str(self.ig)]
        argv += ["--serve", "--port", str(self.port)]
        began = time.monotonic()
        self._process = subprocess.Popen(  # noqa: S603
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self._await_listening(self._process.stdout, began)
        self.started_in_s = time.monotonic() - began
        return self

    def _await_listening(self, stdout: IO[str] | None, began: float) -> None:
        assert stdout is not None and self._process is not None
        # readline blocks; the JVM prints the line once or exits (EOF), so no deadline is lost
        # except a hung JVM's, which the caller's timeout catches
        for line in stdout:
            if LISTENING.search(line):
                return
            if time.monotonic() - began > self.startup_timeout_s:
                break
        self.stop()
        raise FhirValidatorProcessError("the validator server did not start")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> FhirValidatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def batch_verdict(document: Mapping[str, Any], *, ig: Path = IG) -> FhirVerdict:
    """The validator's verdict on one FHIR resource in batch mode (a JVM of its own, as
    ``make validate``, or the server ``FHIR_VALIDATOR_URL`` names): the OperationOutcome
    its server would answer, read."""
    with tempfile.TemporaryDirectory(prefix="fhir-validate-") as tmp:
        path = Path(tmp) / "resource.fhir.json"
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        [report] = run_batch([path], ig=ig, server_url=running_server())
    return verdict_from_outcome(outcome_from_rows(report.issues))


def batch_verdicts(files: Sequence[Path], *, ig: Path = IG) -> list[FhirVerdict]:
    """The validator's verdict on each FHIR file, all in one JVM (``make validate`` with
    several files) or by the server ``FHIR_VALIDATOR_URL`` names, in the order given."""
    reports = run_batch(files, ig=ig, server_url=running_server())
    return [verdict_from_outcome(outcome_from_rows(r.issues)) for r in reports]


def goldens(root: Path = GOLDENS) -> list[Path]:
    """Every FHIR golden: the ``.fhir.json`` files (the other goldens are native documents)."""
    return sorted(root.rglob("*.fhir.json"))


def conformance_resources(ig: Path = IG) -> list[Path]:
    return sorted(ig.glob("*.json"))


def negative_failures(reports: Iterable[FileReport]) -> dict[str, str | None]:
    """Each negative file -> None when rejected for its stated reason, else why not."""
    expected = fhir_negative.expectations()
    return {
        Path(r.file).name: fhir_negative.verdict(expected[Path(r.file).name], r.issues)
        for r in reports
    }


def _group_key(issue: dict[str, Any]) -> str:
    """An issue's message and where, with what varies per message folded: indices, resource
    ids, quoted values (a code, a fullUrl) and a code after a system."""
    where = re.sub(r"\[\d+\]", "[]", issue.get("expression") or "")
    where = re.sub(r"/\*(\w+)/[^*]*\*/", r"/*\1*/", where)
    message = re.sub(r"'[^']*'", "'…'", issue["message"])
    message = re.sub(
        r"(https?://|urn:)[^\s#]+#\S+", lambda m: m.group(0).split("#")[0] + "#…", message
    )
    return f"{message}  @ {where}"


def summary(reports: Iterable[FileReport]) -> str:
    """Counts, then each distinct error and warning message (indices folded) with its count."""
    reports = list(reports)
    grouped: collections.Counter[tuple[str, str]] = collections.Counter()
    for report in reports:
        for issue in report.issues:
            if issue["severity"] in ("fatal", "error", "warning"):
                grouped[(issue["severity"], _group_key(issue))] += 1
    lines = [
        f"{len(reports)} files, {sum(1 for r in reports if r.errors)} with errors: "
        f"{sum(r.errors for r in reports)} errors, {sum(r.warnings for r in reports)} warnings"
    ]
    lines += [f"  {n:5d} {severity:7s} {text}" for (severity, text), n in grouped.most_common()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: every FHIR golden")
    parser.add_argument("--json", action="store_true", help="the validator's own lines")
    args = parser.parse_args(argv)
    if args.files:
        positive, negative = list(args.files), []
    else:
        positive = conformance_resources() + goldens()
        negative = fhir_negative.negatives()
    reports = run_batch(positive + negative)
    negative_reports = reports[len(positive) :]
    reports = reports[: len(positive)]
    for report in reports:
        if args.json:
            print(json.dumps(dataclasses.asdict(report) | {"issues": list(report.issues)}))
        for issue in report.issues:
            if issue["severity"] in ("fatal", "error") and not args.json:
                print(f"{report.file}: {issue.get('expression')}: {issue['message']}")
    out = sys.stderr if args.json else sys.stdout
    print(summary(reports), file=out)
    failures = negative_failures(negative_reports)
    if failures:
        bad = {name: why for name, why in failures.items() if why is not None}
        print(
            f"negative set: {len(failures) - len(bad)} of {len(failures)} rejected "
            "for their stated reason",
            file=out,
        )
        for name, why in sorted(bad.items()):
            print(f"  {name}: {why}", file=out)
        if len(failures) != len(fhir_negative.expectations()):
            print("  expected.json and the files disagree", file=out)
            return 1
        if bad:
            return 1
    return 1 if any(r.errors for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
