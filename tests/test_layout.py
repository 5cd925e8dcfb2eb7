"""Imports run one way: scripts -> worker -> providers / ledger -> campaigns.

``scripts`` holds the front ends people and other systems use: the ``loa`` CLI and the
HTTP API (``scripts.api``), which makes the same reports and plans the CLI does.

``campaigns`` is the pure domain (no dramatiq, no database, no network), and no provider
is named outside ``providers/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What each room may import from the others.
ALLOWED = {
    "campaigns": set(),
    "providers": {"campaigns"},
    "ledger": {"campaigns"},
    "worker": {"campaigns", "providers", "ledger"},
    "scripts": {"campaigns", "providers", "ledger", "worker"},
}
#: Libraries the pure domain must not touch.
NOT_IN_DOMAIN = {
    "dramatiq",
    "sqlalchemy",
    "alembic",
    "redis",
    "psycopg",
    "twilio",
    "aiohttp",
    "requests",
    "httpx",
    "socket",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_imports_run_one_way(room):
    forbidden = set(ALLOWED) - ALLOWED[room] - {room}
    for path in sources(room):
        wrong = imports(path) & forbidden
        assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(sorted(wrong))}"


def test_the_domain_needs_no_services():
    for path in sources("campaigns"):
        wrong = imports(path) & NOT_IN_DOMAIN
        assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(sorted(wrong))}"


def test_no_provider_type_is_named_outside_providers():
    from providers import REGISTRY

    for room in ("campaigns", "ledger", "worker", "scripts"):
        for path in sources(room):
            text = path.read_text(encoding="utf-8").lower()
            for name in REGISTRY:
                if name == "sandbox":
                    continue  # the demo's default instance name lives in settings and the demo
                assert name not in text, f"{path.relative_to(ROOT)} names provider {name}"


def _module_level_imports(path: Path, package: str) -> set[str]:
    """The ``package`` modules ``path`` imports when it is imported: its body's import
    statements, not those inside functions (a deliberate deferral) nor under
    ``if TYPE_CHECKING`` (never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == package or node.module.startswith(f"{package}."):
                # `from worker.sending import dispatch` imports worker.sending.dispatch
                # when that is a module; otherwise it takes a name from worker.sending.
                for alias in node.names:
                    inner = f"{node.module}.{alias.name}"
                    is_module = (ROOT / Path(*inner.split("."))).with_suffix(".py").exists()
                    found.add(inner if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(f"{package}."))
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("package", ["worker", "ledger", "providers", "campaigns", "scripts"])
def test_modules_of_a_package_import_each_other_without_a_circle(package):
    graph = {
        _module_name(path): _module_level_imports(path, package)
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.stem != "__init__"
    }
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            circle = [*trail[trail.index(module) :], module]
            raise AssertionError("imports in a circle: " + " -> ".join(circle))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, [*trail, module])
        done.add(module)

    for module in graph:
        visit(module, [])


#: Beyond this, a folder is asking for sub-packages (DEVELOPERS.md).
MODULES_PER_FOLDER = 25


def test_no_folder_of_loa_holds_too_many_modules():
    for room in ALLOWED:
        for folder in [ROOT / room, *(p for p in (ROOT / room).rglob("*") if p.is_dir())]:
            modules = [p for p in folder.glob("*.py") if p.stem != "__init__"]
            assert len(modules) <= MODULES_PER_FOLDER, (
                f"{folder.relative_to(ROOT)} holds {len(modules)} modules: split it"
            )
