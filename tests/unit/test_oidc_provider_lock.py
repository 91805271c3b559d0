"""The sandbox's OIDC provider comes from npm pinned: one exact version in package.json,
and every package in the committed lock with a sha512 integrity hash that `npm ci` checks
(make oidc-provider, without install scripts)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "sandbox" / "oidc_provider"


def test_the_provider_is_pinned_to_one_version_and_locked():
    package = json.loads((HERE / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((HERE / "package-lock.json").read_text(encoding="utf-8"))
    (version,) = package["dependencies"].values()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)  # exact, no range
    assert lock["packages"]["node_modules/oidc-provider"]["version"] == version
    assert lock["packages"][""]["dependencies"] == package["dependencies"]


def test_every_locked_package_has_a_sha512_integrity_hash():
    lock = json.loads((HERE / "package-lock.json").read_text(encoding="utf-8"))
    packages = {name: entry for name, entry in lock["packages"].items() if name}
    assert len(packages) > 10
    for name, entry in packages.items():
        assert entry.get("integrity", "").startswith("sha512-"), name
        assert not entry.get("link"), name  # nothing from outside the registry


def test_make_installs_it_with_npm_ci_and_no_install_scripts():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (line,) = [x for x in makefile.splitlines() if x.startswith("\tnpm ")]
    assert "npm ci" in line and "--ignore-scripts" in line
    for target in ("test:", "test-postgres:", "browser:", "security:"):
        (rule,) = [x for x in makefile.splitlines() if x.startswith(target)]
        assert "oidc-provider" in rule, target
