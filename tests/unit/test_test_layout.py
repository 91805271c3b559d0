"""Helpers shared between test modules live in tests/support (issue 16): no test module and
no conftest imports from a test module (``test_*.py``) or from a conftest. A test module
imported by another is collected twice over and drags its fixtures and marks along; a
conftest is pytest's to load, and importing it makes a second copy of its state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def _package(path: Path) -> list[str]:
    """The dotted package a file under tests/ belongs to, e.g. ["tests", "unit"]."""
    return ["tests", *path.relative_to(TESTS).parent.parts]


def imported_test_modules(source: str, path: Path) -> list[str]:
    """The test modules and conftests that ``source`` (the file at ``path``) imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package, up level - 1
                package = _package(path)
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if _is_test_module(module):
                found.append(module)
            else:  # from tests.unit import test_console
                found += [
                    f"{module}.{alias.name}" for alias in node.names if _is_test_module(alias.name)
                ]
    return found


@pytest.mark.slow
def test_no_test_module_imports_from_a_test_module_or_a_conftest():
    offenders = [
        f"{path.relative_to(TESTS.parent)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in imported_test_modules(path.read_text(), path)
    ]
    assert offenders == [], "move the helpers to tests/support:\n" + "\n".join(offenders)


def test_every_form_of_such_an_import_is_found():
    here = TESTS / "security" / "test_example.py"
    source = """
import tests.conftest
import tests.unit.test_console as console
from tests.unit.test_console import log_in
from tests.browser.conftest import ROOT
from tests.unit import test_console, something_else
from . import conftest
from .test_errors_never_echo import targets
from ..unit.test_console import found

def later():
    from tests.security.test_access_log_checkpoints import forge
"""
    assert imported_test_modules(source, here) == [
        "tests.conftest",
        "tests.unit.test_console",
        "tests.unit.test_console",
        "tests.browser.conftest",
        "tests.unit.test_console",
        "tests.security.conftest",
        "tests.security.test_errors_never_echo",
        "tests.unit.test_console",
        "tests.security.test_access_log_checkpoints",
    ]


def test_support_modules_and_other_packages_are_allowed():
    here = TESTS / "unit" / "test_example.py"
    source = """
import pytest
from tests.support.console_client import log_in
from tests.support import router
from services.router.ops import app
from . import helpers_that_are_not_tests
"""
    assert imported_test_modules(source, here) == []
