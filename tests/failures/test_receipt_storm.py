"""PostgreSQL restarted in the middle of a receipt storm: every receipt the webhook
answered 2xx is in the ledger; the others were answered 503 (so the provider sends them
again), and the webhook goes on serving once the database is back.

The database is a PostgreSQL cluster of this test's own (``initdb`` in a temporary
folder, run as the ``postgres`` user), so restarting it touches nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.schema import receipts
from tests.rig import free_port, missing
from tests.worker.test_webhook import AUTH, PUBLIC, sent_campaign, webhook

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
#: Where Debian keeps each installed version's server programs (off PATH).
DEBIAN = Path("/usr/lib/postgresql")


def server_programs() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: the one on PATH, or else the newest
    version Debian installed. Any version will do: the cluster is the test's own, made by
    that version's ``initdb``. None installed fails under CI (``.ci/run`` installs them)."""

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in folder.parent.name.split(".") if n.isdigit())

    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted((p.parent for p in DEBIAN.glob("*/bin/initdb")), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    missing(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql"
    )


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)


@contextmanager
def own_postgres() -> Iterator[tuple[str, Callable[..., None]]]:
    """A throwaway cluster on a free port; yields its URL and a function restarting it.
    Its folder is outside pytest's (which only root may enter), owned by ``postgres``."""
    programs = server_programs()
    directory = Path(tempfile.mkdtemp(prefix="loa-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    data, port = directory / "data", free_port()
    _as_postgres(
        str(programs / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
    )
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
    control = [str(programs / "pg_ctl"), "-D", str(data), "-w", "-l", str(directory / "log")]
    _as_postgres(*control, "-o", options, "start")

    def restart(while_down: Callable[[], None] | None = None) -> None:
        """Stop it (every connection cut), run ``while_down``, start it again."""
        _as_postgres(*control, "-m", "fast", "stop")
        time.sleep(1.0)  # the database stays down a moment, as in a real restart
        if while_down is not None:
            while_down()
        _as_postgres(*control, "-o", options, "start")  # -w: accepting connections

    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        _as_postgres(*control, "-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


def test_a_postgres_restart_mid_storm_loses_no_acknowledged_receipt(tmp_path):
    with own_postgres() as (url, restart):
        engine = make_engine(url)
        upgrade(engine)
        ids = [f"SM{n:06d}" for n in range(3000)]
        sent_campaign(engine, "intl", ids)
        answers: dict[str, int] = {}
        validator = RequestValidator(AUTH)

        with webhook(engine, tmp_path) as (base, _):

            def post(chunk: list[str]) -> None:
                for sid in chunk:
                    fields = {"MessageSid": sid, "MessageStatus": "delivered"}
                    request = urllib.request.Request(
                        f"{base}/receipts/intl",
                        urllib.parse.urlencode(fields).encode(),
                        {
                            "Content-Type": "application/x-www-form-urlencoded",
                            "X-Twilio-Signature": validator.compute_signature(PUBLIC, fields),
                        },
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=30) as answer:
                            answers[sid] = answer.status
                    except urllib.error.HTTPError as error:
                        answers[sid] = error.code
                    except (urllib.error.URLError, OSError):
                        answers[sid] = 0  # no answer at all: fails the count below

            # The storm's threads may end before the restart, or during it, however fast
            # the machine: one receipt is posted while the database is down and the last
            # ones once it is back, so that neither depends on how fast the storm went.
            down, late = ids[-51], ids[-50:]
            storm = ids[:-51]
            senders = [threading.Thread(target=post, args=(storm[i::8],)) for i in range(8)]
            for sender in senders:
                sender.start()
            while len(answers) < 600 and any(sender.is_alive() for sender in senders):
                time.sleep(0.05)  # waiting for the storm to be under way; the count decides
            restart(while_down=lambda: post([down]))
            for sender in senders:
                sender.join(timeout=600)  # bounds a hang
            post(late)

        engine.dispose()
        engine = make_engine(url)
        with engine.connect() as conn:
            stored = set(conn.scalars(sa.select(receipts.c.provider_message_id)))
        engine.dispose()

    acknowledged = {sid for sid, status in answers.items() if 200 <= status < 300}
    refused = {sid for sid, status in answers.items() if status == 503}
    assert len(answers) == len(ids) and acknowledged | refused == set(ids)
    assert acknowledged <= stored  # nothing that got a 2xx was lost
    assert answers[down] == 503  # refused while the database was down: sent again later
    assert any(answers[sid] == 200 for sid in late)  # it serves again after the restart
