"""A bind (``providers.smpp.session.Bind``) and the local SMSC (``providers.fakes.smpp``)
in one event loop, over real TCP, for the SMPP tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import smsutil

from providers.fakes.smpp import FakeSmsc
from providers.smpp.session import Bind

#: A scenario that hangs fails after this many seconds instead of hanging the suite.
DEADLINE = 8.0
DESTINATION = "84912345678"
#: A brandname sender (TON 5 / NPI 0) to an international number (TON 1 / NPI 1).
MESSAGE = {
    "source_addr_ton": 5,
    "source_addr_npi": 0,
    "source_addr": "NinhThuan",
    "dest_addr_ton": 1,
    "dest_addr_npi": 1,
    "destination_addr": DESTINATION,
}


def part(text: str = "Cai Bluezone", **fields: Any) -> dict[str, Any]:
    """submit_sm fields for one GSM part (smsutil's GSM 03.38 codec, not Loa's)."""
    return {**MESSAGE, "data_coding": 0, "short_message": text.encode("gsm0338"), **fields}


def encoded_parts(text: str) -> tuple[int, bytes, list[bytes]]:
    """data_coding, the whole text encoded, and its parts, as smsutil splits them (153
    GSM septets or 67 UCS-2 characters a part)."""
    split = smsutil.split(text)
    coding, codec = (0x08, "utf-16-be") if split.encoding == "utf_16_be" else (0x00, "gsm0338")
    return coding, text.encode(codec), [p.content.encode(codec) for p in split.parts]


@dataclass
class Scene:
    smsc: FakeSmsc
    binds: list[Bind] = field(default_factory=list)

    def make(self, **overrides: Any) -> Bind:
        """A bind to the SMSC, not connected: the fake's credentials, a 2 s response
        timeout, no keep-alive unless asked."""
        settings: dict[str, Any] = {"system_id": "loa", "password": "secret"}
        settings |= {"response_timeout": 2.0, "enquire_link_interval": None, **overrides}
        bind = Bind("127.0.0.1", self.smsc.port, **settings)
        self.binds.append(bind)
        return bind

    async def bind(self, **overrides: Any) -> Bind:
        bind = self.make(**overrides)
        await bind.connect()
        return bind


def play(test: Callable[[Scene], Awaitable[Any]], **settings: Any) -> Any:
    """Run ``test`` against a fresh SMSC (``FakeSmsc(**settings)``); close everything after."""

    async def main() -> Any:
        scene = Scene(FakeSmsc(**settings))
        await scene.smsc.start()
        try:
            async with asyncio.timeout(DEADLINE):
                return await test(scene)
        finally:
            for bind in scene.binds:
                await bind.close()
            await scene.smsc.stop()

    return asyncio.run(main())
