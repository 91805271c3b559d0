"""The lock files: every package the project installs, pinned, with the sha256 of every file
PyPI has for it, resolved for Linux x86_64 and CPython 3.11.

``requirements.lock``
    The services' dependencies and the installer group (pip, setuptools): the production
    image's ``pip install --require-hashes``. Its pins are the dev lock's (``-c``), so
    production runs exactly the versions the tests ran.
``requirements-dev.lock``
    That, the ``dev`` and ``sandbox`` extras and the lock group (uv, packaging): ``make
    install``.

Each lock records the sha256 of ``pyproject.toml``'s dependency tables it was made from
(:func:`fingerprint`), so a dependency added, removed or re-specified without ``make lock``
is noticed offline by ``tests/unit/test_lock_files.py``.

``python -m sandbox.lockfile compile --uv UV [uv args]`` (``make lock``)
    Resolves both locks again with uv; pins already in a lock are kept unless pyproject.toml
    excludes them or the uv args say ``--upgrade`` / ``--upgrade-package NAME``.
``python -m sandbox.lockfile check --uv UV`` (``make lock-check``)
    The offline checks of :func:`problems`, then a resolution of each lock's pins from the
    index into a temporary directory (:func:`check`). Exit 1 if anything differs.
``python -m sandbox.lockfile requirement NAME... LOCK``
    Prints the named pins of a lock with their hashes (how ``make`` installs uv itself).

Only the standard library is imported at module level: ``make`` runs the ``requirement``
command with the system Python before any environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

# the platform every lock is resolved for, wherever `make lock` runs
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-unknown-linux-gnu")
STAMP = re.compile(r"^# pyproject\.toml dependencies sha256=([0-9a-f]{64})\b.*$", re.MULTILINE)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Lock:
    file: str
    extras: tuple[str, ...]
    groups: tuple[str, ...]
    constrained_by: str | None = None  # a lock whose pins this one must keep


DEV = Lock("requirements-dev.lock", ("dev", "sandbox"), ("installer", "lock"))
RUNTIME = Lock("requirements.lock", (), ("installer",), constrained_by=DEV.file)
LOCKS = (DEV, RUNTIME)  # in the order they are made


@dataclass(frozen=True)
class Pin:
    name: str  # normalised (PEP 503)
    version: str
    hashes: frozenset[str]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_tables(pyproject_text: str) -> dict[str, object]:
    """What the locks are made from: every table of pyproject.toml that names a package."""
    data = tomllib.loads(pyproject_text)
    project = data["project"]
    return {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "dependency-groups": data.get("dependency-groups", {}),
        "build-system.requires": data.get("build-system", {}).get("requires", []),
    }


def fingerprint(pyproject_text: str) -> str:
    """sha256 of the dependency tables, indifferent to comments, spacing and order of tables."""
    canonical = json.dumps(dependency_tables(pyproject_text), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_fingerprint(lock_text: str) -> str | None:
    found = STAMP.search(lock_text)
    return found.group(1) if found else None


def stamp(lock_text: str, digest: str) -> str:
    """The lock with its fingerprint line after uv's header (replacing an older one)."""
    line = f"# pyproject.toml dependencies sha256={digest} (tests/unit/test_lock_files.py)"
    lines = [each for each in lock_text.splitlines() if not STAMP.match(each)]
    at = next((i for i, each in enumerate(lines) if not each.startswith("#")), len(lines))
    return "\n".join([*lines[:at], line, *lines[at:]]) + "\n"


def pins(lock_text: str) -> dict[str, Pin]:
    """Every requirement of a lock (continuation lines joined, comments dropped)."""
    logical = re.sub(r"\\\n", " ", lock_text)
    found: dict[str, Pin] = {}
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match is None:
            raise ValueError(f"not a pinned requirement: {line[:80]!r}")
        name = normalise(match.group(1))
        found[name] = Pin(name, match.group(2), frozenset(HASH.findall(line)))
    return found


def requirements(pyproject_text: str, lock: Lock) -> list[str]:
    """The requirement strings of pyproject.toml that ``lock`` is made from."""
    data = tomllib.loads(pyproject_text)
    project = data["project"]
    wanted: list[str] = list(project.get("dependencies", []))
    wanted += [each for extra in lock.extras for each in project["optional-dependencies"][extra]]
    wanted += [each for group in lock.groups for each in data["dependency-groups"][group]]
    wanted += data.get("build-system", {}).get("requires", [])
    return wanted


def problems(pyproject_text: str, locks: dict[str, str]) -> list[str]:
    """Why the locks (file name → text) do not match pyproject.toml, if they do not: a stale
    fingerprint, a requirement with no pin, a pin outside its specifier, a pin without hashes,
    a runtime pin that differs from the dev lock's. Needs ``packaging`` (in the dev lock)."""
    from packaging.requirements import Requirement

    found: list[str] = []
    digest = fingerprint(pyproject_text)
    parsed = {file: pins(text) for file, text in locks.items()}
    for lock in LOCKS:
        if lock.file not in locks:
            found.append(f"{lock.file}: missing (run make lock)")
            continue
        if recorded_fingerprint(locks[lock.file]) != digest:
            found.append(
                f"{lock.file}: made from other pyproject.toml dependencies than today's "
                "(run make lock)"
            )
        pinned = parsed[lock.file]
        for text in requirements(pyproject_text, lock):
            requirement = Requirement(text)
            pin = pinned.get(normalise(requirement.name))
            if pin is None:
                found.append(f"{lock.file}: {requirement.name} is not pinned (run make lock)")
            elif not requirement.specifier.contains(pin.version, prereleases=True):
                found.append(
                    f"{lock.file}: {requirement.name}=={pin.version} is outside "
                    f"{requirement.specifier} (run make lock)"
                )
        found += [
            f"{lock.file}: {pin.name} has no --hash" for pin in pinned.values() if not pin.hashes
        ]
        if lock.constrained_by in parsed:
            keeper = parsed[lock.constrained_by]
            for pin in pinned.values():
                other = keeper.get(pin.name)
                if other is None or other.version != pin.version:
                    theirs = other.version if other else "nothing"
                    found.append(
                        f"{lock.file}: {pin.name}=={pin.version}, {lock.constrained_by} pins "
                        f"{theirs} (run make lock)"
                    )
    return found


def compile_locks(
    uv: str, into: Path, uv_args: list[str], pinned_to: dict[str, Path] | None = None
) -> None:
    """Make both locks in ``into`` with uv; a lock already there gives uv its pins (and its
    hashes: uv reuses them). ``pinned_to`` gives a lock constraints instead."""
    digest = fingerprint(PYPROJECT.read_text())
    for lock in LOCKS:
        out = into / lock.file
        command = [uv, "pip", "compile", str(PYPROJECT), "--quiet", "--generate-hashes"]
        command += [*PLATFORM, "--custom-compile-command", "make lock", "-o", str(out)]
        command += [arg for extra in lock.extras for arg in ("--extra", extra)]
        command += [arg for group in lock.groups for arg in ("--group", group)]
        if lock.constrained_by:
            command += ["-c", str(into / lock.constrained_by)]
        if pinned_to and lock.file in pinned_to:
            command += ["-c", str(pinned_to[lock.file])]
        subprocess.run([*command, *uv_args], check=True, cwd=ROOT)  # noqa: S603
        out.write_text(stamp(out.read_text(), digest))


def check(uv: str) -> list[str]:
    """:func:`problems`, then each lock resolved again on its own pins into an empty file,
    so that uv takes every hash from the index: the same pins must come out (no package
    more or less), and every hash of the lock must be one of a file the index has (files
    uploaded since are no problem)."""
    current = {
        lock.file: (ROOT / lock.file).read_text() for lock in LOCKS if (ROOT / lock.file).exists()
    }
    found = problems(PYPROJECT.read_text(), current)
    if found:
        return found  # resolving again would only repeat it
    with tempfile.TemporaryDirectory(prefix="lock-check-") as scratch:
        into = Path(scratch) / "again"
        into.mkdir()
        pinned_to: dict[str, Path] = {}
        for file, text in current.items():
            pinned_to[file] = Path(scratch) / f"{file}.pins"
            pinned_to[file].write_text(
                "".join(f"{pin.name}=={pin.version}\n" for pin in pins(text).values())
            )
        try:
            compile_locks(uv, into, [], pinned_to)
        except subprocess.CalledProcessError:
            return ["the locks' pins do not resolve any more (uv says why above): run make lock"]
        for lock in LOCKS:
            ours, again = pins(current[lock.file]), pins((into / lock.file).read_text())
            for name in sorted(ours.keys() | again.keys()):
                mine, theirs = ours.get(name), again.get(name)
                if mine is None or theirs is None or mine.version != theirs.version:
                    was = mine.version if mine else "absent"
                    now = theirs.version if theirs else "absent"
                    found.append(f"{lock.file}: {name} is {was}, resolving again gives {now}")
                elif unknown := mine.hashes - theirs.hashes:
                    found.append(
                        f"{lock.file}: {name}=={mine.version} lists {len(unknown)} hash(es) "
                        "of no file the index has"
                    )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.lockfile", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("compile", "check"):
        sub = commands.add_parser(name)
        sub.add_argument("--uv", required=True, help="the uv executable")
    requirement = commands.add_parser("requirement")
    requirement.add_argument("names", nargs="+")
    requirement.add_argument("lock", type=Path)
    args, rest = parser.parse_known_args(argv)
    if args.command == "compile":
        compile_locks(args.uv, ROOT, rest)
        print(f"wrote {', '.join(lock.file for lock in LOCKS)}")
        return 0
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "requirement":
        pinned = pins(args.lock.read_text())
        for name in args.names:
            pin = pinned[normalise(name)]
            hashes = "".join(f" --hash=sha256:{each}" for each in sorted(pin.hashes))
            print(f"{pin.name}=={pin.version}{hashes}")
        return 0
    found = check(args.uv)
    for each in found:
        print(each, file=sys.stderr)
    if not found:
        print(f"{' and '.join(lock.file for lock in LOCKS)} match pyproject.toml")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
