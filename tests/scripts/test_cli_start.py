"""`loa` answers at once because each command imports only what it uses.

Measured in time by ``benchmarks/cli_start.py``; held here by what a command loads, which
does not depend on the machine's speed: a heavy package imported at the top of a module
again would slow every command, and these tests name it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Packages that take tens to hundreds of milliseconds to import.
HEAVY = (
    "sqlalchemy", "alembic", "psycopg", "redis", "dramatiq", "aiohttp", "twilio",
    "openpyxl", "structlog", "uvicorn", "prometheus_client", "pydantic_settings",
)  # fmt: skip

PROBE = """
import json, sys
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["loa", *json.loads(sys.argv[1])]
from scripts.cli import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({name.partition(".")[0] for name in sys.modules} & heavy)
sys.__stdout__.write("\\nLOADED " + json.dumps(loaded))
"""


def loaded_by(*args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    marker = done.stdout.rpartition("\nLOADED ")[2]
    assert marker.startswith("["), done.stdout + done.stderr
    return json.loads(marker)


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("campaign", "--help"),
        ("campaign", "status", "--help"),
        ("report", "--help"),
        ("text", "check", "Cài Bluezone để phòng COVID-19"),
    ],
)
def test_help_and_text_check_load_nothing_heavy(args) -> None:
    assert loaded_by(*args) == []


def test_runtime_imports_no_broker_or_provider_client() -> None:
    """A command that reads the ledger (status, report) builds a Runtime: Redis, dramatiq,
    alembic and the HTTP clients are loaded only when something sends or migrates."""
    code = (
        "import sys, json, worker.runtime, ledger.summary; "
        "print(json.dumps(sorted({n.partition('.')[0] for n in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert loaded & {"redis", "dramatiq", "alembic", "aiohttp", "twilio", "openpyxl"} == set()
