"""Proof against an SMSC Loa did not write: node-smpp (npm ``smpp``, the version in
``tests/smsc/package.json``) running ``tests/smsc/node-smsc.js``. It prints, as JSON, what
it decoded from each PDU, so Loa's bytes are judged by another SMPP implementation: the
bind, UCS-2 Vietnamese in parts with an 8-bit UDH and with SAR TLVs (text and
concatenation as node-smpp reads them), message ids, and receipts it sends back, answered.

node-smpp is installed into ``.cache/node-smpp`` by the fixture (npm, a few seconds, once);
without node or npm the tests are skipped, except under CI (``tests.rig.missing``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from providers.smpp.errors import BindRefused
from providers.smpp.session import Bind
from tests.providers.smpp_scene import DEADLINE, MESSAGE, encoded_parts
from tests.rig import ROOT, missing

SCRIPT = ROOT / "tests" / "smsc" / "node-smsc.js"
PREFIX = ROOT / ".cache" / "node-smpp"
VERSION = json.loads((SCRIPT.parent / "package.json").read_text())["dependencies"]["smpp"]
TEXT = (
    "Sở TT&TT Ninh Thuận: quý khách vui lòng cài ứng dụng Bluezone để được cảnh báo khi "
    "tiếp xúc gần người nhiễm COVID-19. Tải tại https://bluezone.gov.vn"
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """node-smpp at the pinned version, installed into .cache/node-smpp when it is not."""
    installed = PREFIX / "node_modules" / "smpp" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == VERSION:
        return installed.parents[1]
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("node and npm are needed for the node-smpp proof tests")
    command = [npm, "install", "--prefix", str(PREFIX), f"smpp@{VERSION}"]
    command += ["--no-audit", "--no-fund", "--silent"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not installed.exists():
        missing(f"npm could not install smpp@{VERSION}: {done.stderr[-500:]}")
    return installed.parents[1]


class Events:
    """What node-smsc.js printed, as it arrives."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.seen.append(event)
        self._changed.set()
        self._changed = asyncio.Event()

    async def take(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        """The first ``count`` events called ``name``, once that many have come."""
        while len(found := [e for e in self.seen if e["event"] == name]) < count:
            await self._changed.wait()
        return found[:count]


@asynccontextmanager
async def node_smsc(node_modules: Path) -> AsyncIterator[tuple[int, Events]]:
    """node-smsc.js on a free port; yields the port and its events."""
    env = {**os.environ, "NODE_PATH": str(node_modules), "PORT": "0"}
    process = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    events = Events()

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            events.add(json.loads(line))

    try:
        first = (await process.stdout.readline()).decode()
        if not first.startswith("listening on smpp://"):
            raise RuntimeError(f"node-smsc.js did not start: {first!r}")
        reading = asyncio.create_task(read())
        yield int(first.rsplit(":", 1)[1]), events
        reading.cancel()
    finally:
        process.terminate()
        await process.wait()


def play(node_modules: Path, test) -> Any:
    async def main() -> Any:
        async with node_smsc(node_modules) as (port, events), asyncio.timeout(DEADLINE):
            return await test(port, events)

    return asyncio.run(main())


def test_node_smpp_refuses_a_wrong_password_with_its_status(node_modules):
    async def test(port, events):
        bind = Bind("127.0.0.1", port, system_id="loa", password="wrong")
        with pytest.raises(BindRefused) as refused:
            await bind.connect()
        assert refused.value.status == 0x0D  # node-smpp's ESME_RBINDFAIL
        assert [e["ok"] for e in await events.take("bind")] == [False]

    play(node_modules, test)


def test_ucs2_parts_with_udh_and_sar_reach_node_smpp_whole_and_receipts_come_back(node_modules):
    coding, _, parts = encoded_parts(TEXT)
    assert coding == 0x08 and len(parts) == 3
    receipts: list[Any] = []
    six = asyncio.Event()

    async def store(pdu) -> int:
        receipts.append(pdu)
        if len(receipts) == 6:
            six.set()
        return 0

    async def test(port, events):
        bind = Bind("127.0.0.1", port, system_id="loa", password="secret", on_deliver=store)
        await bind.connect()
        assert bind.smsc_system_id == "NODESMSC"
        assert [e["ok"] for e in await events.take("bind")] == [True]
        base = {**MESSAGE, "data_coding": 0x08, "registered_delivery": 1}
        ids = []
        for i, body in enumerate(parts, 1):
            udh = bytes([5, 0, 3, 0x2A, 3, i])
            ids.append(await bind.submit_sm(**base, esm_class=0x40, short_message=udh + body))
        for i, body in enumerate(parts, 1):
            sar = {"sar_msg_ref_num": 0x0102, "sar_total_segments": 3, "sar_segment_seqnum": i}
            ids.append(await bind.submit_sm(**base, short_message=body, **sar))
        seen = await events.take("submit_sm", 6)
        assert [status for status, _ in ids] == [0] * 6
        assert [mid for _, mid in ids] == [e["id"] for e in seen]
        assert [e["udh"] for e in seen[:3]] == [[f"00032a030{i}"] for i in (1, 2, 3)]
        assert [e["sar"] for e in seen[3:]] == [[0x0102, 3, i] for i in (1, 2, 3)]
        assert "".join(e["text"] for e in seen[:3]) == TEXT
        assert "".join(e["text"] for e in seen[3:]) == TEXT
        assert {e["data_coding"] for e in seen} == {0x08}
        assert seen[0]["source"] == [5, 0, "NinhThuan"] and seen[0]["esm_class"] == 0x40
        await six.wait()
        assert sorted(r.text("receipted_message_id") for r in receipts) == sorted(m for _, m in ids)
        assert all(r.is_receipt and r.number("message_state") == 2 for r in receipts)
        answers = await events.take("deliver_sm_resp", 6)
        assert sorted((a["id"], a["status"]) for a in answers) == sorted((m, 0) for _, m in ids)
        assert await bind.unbind() is True
        await events.take("unbind")

    play(node_modules, test)
