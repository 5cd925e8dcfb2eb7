"""Commands on a terminal, as an operator runs them: progress bars and live views drawn.

Every other CLI test runs with stdout and stderr redirected, where rich draws nothing;
here each command runs on a pseudo-terminal (``pty``), where it does.
"""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bluezone.toml"
RESIDENTS = ROOT / "examples" / "ninh-thuan-residents.csv"

#: The rows of ``RESIDENTS`` the launch sends to: what is drawn while sending is the same
#: for 1.200 rows as for its 5.200, and sending to all of them (the demo does:
#: ``test_demo_accounts_for_every_row``) took this test ten seconds more.
LAUNCHED_ROWS = 1200

#: Bounds a hang only: the commands below end by themselves.
HANG = 300.0


def on_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run ``loa ARGS`` with a terminal as its stdin, stdout and stderr; its exit code and
    everything it drew."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "scripts", *args], env)
    drawn = bytearray()
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        drawn += chunk
    else:
        os.kill(pid, 9)
        pytest.fail(f"loa {' '.join(args)} did not end within {HANG} s")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), drawn.decode("utf-8", errors="replace")


def test_commands_with_progress_bars_run_on_a_terminal(tmp_path) -> None:
    code, drawn = on_terminal("recipients", "check", str(RESIDENTS), cwd=tmp_path)
    assert code == 0, drawn
    assert "Traceback" not in drawn and "5.200" in drawn

    listing = tmp_path / "residents.csv"
    with RESIDENTS.open(encoding="utf-8") as rows:
        listing.write_text("".join(next(rows) for _ in range(1 + LAUNCHED_ROWS)), "utf-8")
    code, drawn = on_terminal("campaign", "launch", str(EXAMPLE), "-r", str(listing), cwd=tmp_path)
    assert code == 0, drawn
    assert "Traceback" not in drawn and "1.155" in drawn  # recipients: 25 refused, 20 twice

    code, drawn = on_terminal(
        "campaign", "status", "bluezone-ninh-thuan-2020", "--watch", cwd=tmp_path
    )
    assert code == 0, drawn
    assert "Traceback" not in drawn and "1.155" in drawn
