"""Which code may import which: the direction the layout promises (README, "The router by
domain"), checked on every module's import statements, so a shortcut fails here, naming the
module and the import, instead of surfacing as a cycle or in a production image.

- The services never import the sandbox, the tests or the benchmarks (the production image
  holds ``services/`` only).
- The shared layer (``services/messaging``) and the adapters never import the router, and
  neither adapter imports the other: each is a service of its own.
- Inside the router, ``ops`` (the JSON API, the console, the CLI) is the outer edge: no domain
  package imports it, nor the service's wiring (``services/router/service.py``).
- Routing never imports deviations or statistics: a confirmation reaches deviations as a
  domain event, and statistics read the tables (issue 18: side effects visible as events).
- Statistics are read by the ops edge only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
ROUTER_DOMAINS = ("routing", "alerting", "deviations", "statistics", "audit", "subscriptions")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            yield node.lineno, node.module or ""


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def _violations(folders: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for folder in folders:
        for path in _modules(folder):
            for line, name in _imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    found.append(f"{_shown(path)}:{line} imports {name}")
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _router(*packages: str) -> list[Path]:
    return [SERVICES / "router" / p for p in packages]


def test_the_rules_see_every_import_form(tmp_path: Path) -> None:
    """The checker itself: both import statements and a dotted ``from`` are seen."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sandbox.stack\nfrom services.router.ops import api\nfrom os import path\n",
        encoding="utf-8",
    )
    assert list(_imports(probe)) == [(1, "sandbox.stack"), (2, "services.router.ops"), (3, "os")]
    assert _violations([tmp_path], ("services.router.ops",)) == [
        f"{probe}:2 imports services.router.ops"
    ]


def test_the_services_never_import_the_sandbox_tests_or_benchmarks() -> None:
    assert _violations([SERVICES], ("sandbox", "tests", "bench")) == []


def test_the_shared_layer_and_the_adapters_never_import_the_router() -> None:
    folders = [SERVICES / "messaging", SERVICES / "adapter_takecare", SERVICES / "adapter_treserva"]
    assert _violations(folders, ("services.router",)) == []


def test_neither_adapter_imports_the_other() -> None:
    assert _violations([SERVICES / "adapter_takecare"], ("services.adapter_treserva",)) == []
    assert _violations([SERVICES / "adapter_treserva"], ("services.adapter_takecare",)) == []


def test_no_router_domain_imports_the_ops_edge_or_the_wiring() -> None:
    forbidden = ("services.router.ops", "services.router.service")
    assert _violations(_router(*ROUTER_DOMAINS), forbidden) == []


def test_routing_never_imports_deviations_or_statistics() -> None:
    forbidden = ("services.router.deviations", "services.router.statistics")
    assert _violations(_router("routing"), forbidden) == []


def test_statistics_are_read_by_the_ops_edge_only() -> None:
    others = [d for d in ROUTER_DOMAINS if d != "statistics"]
    assert _violations(_router(*others), ("services.router.statistics",)) == []
