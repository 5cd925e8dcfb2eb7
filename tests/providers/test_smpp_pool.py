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


class Dropped:
    """A stand-in for a ``Bind`` the SMSC takes, then drops at once (or after ``up``
    seconds of the loop's clock, ``advance``d by the test's sleep)."""

    host, port, close_reason = "127.0.0.1", 2775, "the SMSC unbound"

    def __init__(self, mode: str, clock: list[float], up: float) -> None:
        self.mode, self.clock, self.up, self.bound, self.load = mode, clock, up, True, 0

    async def connect(self) -> None:
        return None

    async def wait_closed(self) -> None:
        self.clock[0] += self.up  # as if it had stayed up this long
        self.bound = False


def waits_between_binds(monkeypatch, up: float, count: int = 6) -> list[float]:
    """The waits the keeper asks for between ``count`` binds that each last ``up``
    seconds (reconnect 1 s to 8 s, no jitter)."""
    clock, waits = [0.0], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        if len(waits) == count:
            raise asyncio.CancelledError

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.time = lambda: clock[0]  # the keeper's clock is the scene's
        binds = Binds(lambda mode: Dropped(mode, clock, up), ["transceiver"], 1.0, 8.0, sleep=sleep)
        binds.start()
        await asyncio.gather(*binds._keepers, return_exceptions=True)

    import providers.smpp.pool as pool

    monkeypatch.setattr(pool.random, "uniform", lambda a, b: 1.0)
    asyncio.run(main())
    return waits


def test_an_smsc_that_drops_every_bind_at_once_is_knocked_on_ever_more_slowly(monkeypatch):
    assert waits_between_binds(monkeypatch, up=0.0) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_bind_that_held_starts_the_waits_again_from_the_shortest(monkeypatch):
    assert waits_between_binds(monkeypatch, up=8.0) == [1.0] * 6
