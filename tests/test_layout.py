"""Imports run one way: scripts -> worker -> providers / ledger -> campaigns.

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
