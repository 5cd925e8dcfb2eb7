"""How the binds of an SMPP provider share the sends (``providers.smpp.pool``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from providers.smpp.pool import Binds


@dataclass
class Held:
    """A stand-in for a bound ``Bind``: what ``take`` reads of one."""

    name: str
    load: int = 0
    mode: str = "transceiver"
    bound: bool = True


def binds_over(*held: Held) -> Binds:
    binds = Binds(lambda mode: None, [], 1.0, 1.0)  # type: ignore[arg-type, return-value]
    binds._open.extend(held)  # bound already: no keeper needed
    binds._keepers.append(None)  # type: ignore[arg-type] - marks it started
    return binds


def test_the_least_loaded_bind_is_taken_and_a_receiver_never():
    async def main():
        binds = binds_over(Held("a", 3), Held("b", 1), Held("r", 0, mode="receiver"), Held("c", 2))
        return [(await binds.take(0.1)).name for _ in range(3)]

    assert asyncio.run(main()) == ["b", "b", "b"]
