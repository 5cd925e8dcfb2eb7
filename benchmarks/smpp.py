"""SMPP sending speed and rate precision, against the fake SMSC (``providers.fakes.smpp``)
running as a process of its own, so that its CPU is not the sender's. It records the
arrival time of every submit_sm; receipts are off there (registered_delivery is asked, as
by default, and never answered), so only submit_sm and their answers cross the wire.
Each scenario prints its details; the run ends with its headline figures
(:class:`benchmarks.figures.Figure`), each beside a reference from the same run.

The references. For speed, a bare client of the same SMPP library: the same PDUs over
the same kind of connection to the same SMSC process, with nothing of Loa, so what is
left of the ratio is what ``SmppProvider`` adds, and a busy machine slows both alike
(they run in turns: bare, provider, bare, provider …, and the medians count). For the
rate, what the limit allows (rate + burst): a number in the settings, not something the
machine's mood changes; the limiter, not the CPU, sets the pace.

1. ``throughput``: messages per second of ``SmppProvider.send`` (single-part GSM texts)
   over one bind and over four (window 10 each), from enough senders to keep every
   window full (twice what the windows hold); against a bare client of the same library
   in the same run: smpplib's own PDUs (``make_pdu(...).generate()``, ``parse_pdu``)
   over a plain asyncio stream, a window of 10 per connection, no Loa code. The two
   run in turns, ``--rounds`` each (3), and the medians are compared. Also the
   CPU each side spent per message (when the SMSC's core is the one that is full, the
   rates say more about it than about the client), and with four binds how many
   submit_sm each bind carried.
2. ``precision``: several processes (3) share a 100 TPS limit through Loa's Redis
   limiter, built and spent as ``loa worker`` does (``Runtime``: the provider's
   ``RedisBucket`` behind its gate, ``LOA_RATE_HEADROOM`` and the default burst; the
   send lane), each through its own ``SmppProvider`` bound to the same SMSC. Measured
   at the SMSC: the most arrivals in any sliding second and the mean rate over the run,
   against the agreed rate. Target: the sliding second never above rate + burst. The
   bucket lives in Redis db 13 under a namespace of its own, deleted afterwards.

    uv run python -m benchmarks.smpp                       # both: 1-2 min on 2 busy cores
    uv run python -m benchmarks.smpp throughput --messages 20000
    uv run python -m benchmarks.smpp --quick               # both, smaller: about 30 s

``--quick`` still sends 5,000 messages a turn: at 3,000-5,000 msg/s that is a second or
more on each side. With 600 (0.15-0.2 s a turn, a few of the scheduler's time slices)
the ratios moved by a quarter between an idle machine and one with two busy processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import struct
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import smpplib.smpp

from benchmarks.dispatch import max_window, sustained
from benchmarks.figures import Figure, interleaved, report
from tests.fake_gateway import FakeGateway, fake_gateway

BENCHMARK = "smpp"
REDIS_URL = "redis://127.0.0.1:6379/13"
SYSTEM_ID, PASSWORD = "loa", "secret"  # the fake SMSC's defaults
SENDER = "NinhThuan"
TEXT = "Ninh Thuan chao don quy khach. Cai Bluezone: https://bluezone.gov.vn"  # GSM, 1 part
ACCEPTED = "0x00000000"
#: --quick's throughput turn: a second or more of sending on each side, not a tenth.
QUICK_MESSAGES = 5_000


def destination(i: int) -> str:
    """The ``i``-th of distinct Vietnamese mobile numbers, international, without '+'."""
    return f"8491{i:07d}"


def outgoing(count: int, first: int = 0) -> list[Any]:
    """``count`` single-part GSM messages, as a batch hands them to a provider."""
    from campaigns.text import Encoding
    from providers import OutgoingMessage

    until = datetime.now(UTC) + timedelta(hours=1)
    return [
        OutgoingMessage(i, "+" + destination(i), TEXT, SENDER, Encoding.GSM7, 1, 1, until)
        for i in range(first, first + count)
    ]


def accepted(gateway: FakeGateway) -> list[float]:
    """Arrival times (the SMSC's clock) of every submit_sm it accepted, in order."""
    return sorted(row[0] for row in gateway.received() if row[3] == ACCEPTED)


def per_bind(gateway: FakeGateway) -> list[int]:
    """How many submit_sm each connection carried, most first."""
    with urllib.request.urlopen(gateway.url + "/_fake/submits", timeout=30) as answer:
        rows = json.loads(answer.read())
    return sorted(Counter(row["connection"] for row in rows).values(), reverse=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- 1. throughput


class _Numbers:
    """What smpplib's PDUs ask of a client: sequence numbers."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


class _Clock:
    """Wall time and this process's CPU time over the sending alone (binds made)."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


async def _bare_bind(host: str, port: int) -> tuple[Any, asyncio.StreamWriter, Any]:
    """A transceiver bind made with smpplib's PDUs: (read one PDU, writer, numbers)."""
    reader, writer = await asyncio.open_connection(host, port)
    client = _Numbers()

    async def read() -> Any:
        head = await reader.readexactly(4)
        body = await reader.readexactly(struct.unpack(">I", head)[0] - 4)
        return smpplib.smpp.parse_pdu(head + body, client=client)

    bind = smpplib.smpp.make_pdu(
        "bind_transceiver", client=client, system_id=SYSTEM_ID, password=PASSWORD
    )
    bind.interface_version = 0x34
    writer.write(bind.generate())
    if (await read()).status != 0:
        raise RuntimeError("the fake SMSC refused the bare client's bind")
    return read, writer, client


async def _bare_send(bound: tuple[Any, Any, Any], numbers: range, window: int) -> None:
    """``numbers``' messages on one bind, at most ``window`` unanswered: smpplib and
    asyncio only. The fields are those the provider sends (alphanumeric sender,
    registered_delivery, one hour's validity)."""
    read, writer, client = bound
    slots = asyncio.Semaphore(window)

    async def answers() -> None:
        for _ in numbers:
            answer = await read()
            if answer.command != "submit_sm_resp" or answer.status != 0:
                raise RuntimeError(f"bare client: {answer.command} status {answer.status}")
            slots.release()

    reading = asyncio.create_task(answers())
    for i in numbers:
        await slots.acquire()
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=client,
            source_addr_ton=5,
            source_addr_npi=0,
            source_addr=SENDER,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=destination(i),
            registered_delivery=1,
            validity_period="000000010000000R",
            data_coding=0,
            short_message=TEXT.encode("ascii"),  # these characters are the same in GSM 03.38
        )
        writer.write(pdu.generate())
    await reading


async def _bare(where: dict, messages: int, binds: int, window: int) -> _Clock:
    bound = [await _bare_bind(where["host"], where["port"]) for _ in range(binds)]
    shares = [range(b, messages, binds) for b in range(binds)]
    try:
        with _Clock() as clock:
            await asyncio.gather(
                *(_bare_send(*pair, window) for pair in zip(bound, shares, strict=True))
            )
        return clock
    finally:
        for _, writer, _ in bound:
            writer.close()


async def _loa(where: dict, messages: int, binds: int, window: int, senders: int) -> _Clock:
    """``SmppProvider.send`` from ``senders`` coroutines, every bind made before the clock
    starts (as ``loa worker`` opens its providers at start)."""
    import providers

    settings = {"type": "smpp", **where, "system_id": SYSTEM_ID, "password": PASSWORD}
    provider = providers.create("bench", {**settings, "binds": binds, "window": window})
    todo = iter(outgoing(messages))
    try:
        await provider.open()
        async with asyncio.timeout(10):
            while len(provider.binds.sending) < binds:
                await asyncio.sleep(0.01)  # polling for the binds: the condition decides

        async def sender() -> None:
            for message in todo:
                await provider.send(message)  # a SendError ends the run, loudly

        with _Clock() as clock:
            await asyncio.gather(*(sender() for _ in range(senders)))
        return clock
    finally:
        await provider.aclose()


def _timed(gateway: FakeGateway, messages: int, run: Any) -> dict:
    """Run ``run`` (a coroutine) and what it cost each side; checks every message arrived."""
    gateway.reset()
    smsc_cpu = cpu_seconds(gateway.process.pid)
    clock = asyncio.run(run)
    smsc_cpu = cpu_seconds(gateway.process.pid) - smsc_cpu  # the binds' few PDUs included
    arrived = len(accepted(gateway))
    if arrived != messages:
        raise RuntimeError(f"{arrived} of {messages} accepted at the SMSC")
    return {
        "rate": messages / clock.wall,
        "client_us_per_msg": clock.cpu / messages * 1e6,
        "smsc_us_per_msg": smsc_cpu / messages * 1e6,
    }


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _rates(runs: list[dict]) -> str:
    return " / ".join(f"{run['rate']:,.0f}" for run in runs)


def _throughput_over(gateway: FakeGateway, args, binds: int) -> Figure:
    """The provider and the bare client in turns over ``binds`` binds: the medians."""
    where, senders = gateway.where, args.senders or 2 * binds * args.window
    bare: list[dict] = []
    loa: list[dict] = []
    spread: list[int] = []

    def bare_turn() -> float:
        bare.append(_timed(gateway, args.messages, _bare(where, args.messages, binds, args.window)))
        return bare[-1]["rate"]

    def loa_turn() -> float:
        run = _loa(where, args.messages, binds, args.window, senders)
        loa.append(_timed(gateway, args.messages, run))
        spread[:] = per_bind(gateway)
        return loa[-1]["rate"]

    rate, bare_rate = interleaved(loa_turn, bare_turn, args.rounds)
    print(
        f"  {binds} bind(s): SmppProvider.send {rate:,.0f} msg/s ({senders} senders; "
        f"{_rates(loa)}); bare smpplib loop {bare_rate:,.0f} msg/s ({_rates(bare)}); "
        f"ratio {rate / bare_rate:.2f}"
    )
    ours, theirs = _median(loa, "client_us_per_msg"), _median(bare, "client_us_per_msg")
    print(
        f"    CPU per message (medians): provider's process {ours:.0f} µs, "
        f"bare client {theirs:.0f} µs (ratio {ours / theirs:.1f}); the SMSC "
        f"{_median(loa, 'smsc_us_per_msg'):.0f} µs with the provider, "
        f"{_median(bare, 'smsc_us_per_msg'):.0f} µs with the bare client"
    )
    if binds > 1:
        print(f"    submit_sm per bind (provider): {' / '.join(map(str, spread))}")
    return Figure(
        BENCHMARK,
        f"throughput: {args.messages:,} single-part messages, {binds} "
        f"bind{'s' if binds > 1 else ''}, window {args.window} (median of {args.rounds})",
        rate,
        "msg/s",
        bare_rate,
        "bare smpplib client",
        better="higher",
    )


def throughput(args) -> list[Figure]:
    print(
        f"throughput: {args.messages:,} single-part GSM messages, window {args.window}, "
        f"{args.rounds} turns each"
    )
    with fake_gateway("providers.fakes.smpp") as gateway:
        return [_throughput_over(gateway, args, binds) for binds in (1, 4)]


# ---- 2. precision


class _Owner:
    """What a send lane asks of a batch: here, just counting what ended and how."""

    campaign_id = "bench"

    def __init__(self, count: int) -> None:
        self.count, self.results, self.done = count, Counter(), threading.Event()

    def picked(self) -> bool:
        return True

    def going(self) -> bool:
        return True

    def ended(self, message_id: int, result: object) -> None:
        self.results[type(result).__name__] += 1
        if sum(self.results.values()) == self.count:
            self.done.set()


def _rate_child(where, redis_url, namespace, limit, first, count, barrier, results) -> None:
    """One worker-like process: a ``Runtime`` (no ledger needed: an in-memory SQLite
    engine that nothing uses, receipts being off) sending ``count`` messages through its
    send lane, gate, Redis bucket and SMPP provider."""
    import sqlalchemy as sa

    from worker.logging import configure_logging
    from worker.runtime import Runtime
    from worker.settings import Settings

    configure_logging("WARNING", "console")
    provider = {"type": "smpp", **where, "system_id": SYSTEM_ID, "password": PASSWORD}
    settings = Settings(
        providers={"smsc": {**provider, "rate_per_second": limit}},
        redis_url=redis_url,
        redis_namespace=namespace,
    )
    try:
        runtime = Runtime(settings, engine=sa.create_engine("sqlite://"))
    except BaseException:
        barrier.abort()  # the parent learns at once, not at the barrier's timeout
        raise
    try:
        runtime.open_providers()  # bind now, as loa worker's processes do
        binds = runtime.provider("smsc").binds  # type: ignore[attr-defined]
        asyncio.run_coroutine_threadsafe(binds.take(10), runtime.send_loop()).result(15)
        lane, owner, messages = runtime.send_lane("smsc"), _Owner(count), outgoing(count, first)
        barrier.wait(60)  # every process bound: start together
        lane.submit(owner, messages)
        owner.done.wait(600)
        results.put(dict(owner.results))
    except BaseException as error:
        barrier.abort()
        results.put({f"failed: {error!r}": count})  # the parent stops waiting for it
        raise
    finally:
        runtime.close()


def precision(args) -> list[Figure]:
    from worker.sending.ratelimit import default_burst
    from worker.settings import Settings

    limit, processes, total = args.rate, args.processes, args.rate_messages
    burst = default_burst(limit)
    headroom = Settings.model_fields["rate_headroom"].default
    namespace = f"bench-smpp-{uuid.uuid4().hex[:8]}"
    print(
        f"precision: {processes} processes share {limit} TPS through Redis "
        f"(burst {burst}, headroom {headroom:.0%}), {total:,} messages"
    )
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes + 1), context.Queue()
    share = total // processes
    with fake_gateway("providers.fakes.smpp") as gateway:
        shares = [(n * share, share) for n in range(processes)]
        common = (gateway.where, args.redis, namespace, limit)
        children = [
            context.Process(target=_rate_child, args=(*common, *mine, barrier, results))
            for mine in shares
        ]
        try:
            for child in children:
                child.start()
            gateway.reset()
            barrier.wait(60)
            ended = Counter()
            for _ in children:
                ended.update(results.get(timeout=600))
            for child in children:
                child.join(60)
            times = accepted(gateway)
        finally:
            for child in children:
                if child.is_alive():
                    child.kill()
            client = redis.Redis.from_url(args.redis)
            for key in client.scan_iter(match=f"{namespace}:*"):
                client.delete(key)
            client.close()
    print(f"  accepted at the SMSC: {len(times):,} of {share * processes:,} ({dict(ended)})")
    if len(times) < 2:
        return []
    per_second = Counter(int(t) for t in times)
    sliding, mean, aimed = max_window(times), sustained(times), limit * (1 - headroom)
    start = max_window([t for t in times if t < times[0] + 2])
    print(
        f"  busiest sliding second at the SMSC: {sliding}, ratio to {limit}: "
        f"{sliding / limit:.2f} (allowed: rate + burst = {limit + burst}, "
        f"{'met' if sliding <= limit + burst else 'NOT met'}); in the first two seconds "
        f"{start}; busiest calendar second {max(per_second.values())}"
    )
    print(
        f"  mean rate over the run: {mean:.1f} msg/s, ratio to {limit}: {mean / limit:.3f} "
        f"(to the {aimed:.0f} Loa aims at: {mean / aimed:.3f})"
    )
    return [
        Figure(
            BENCHMARK,
            f"precision: {len(times):,} messages, {processes} processes share {limit} TPS "
            f"(burst {burst}): busiest sliding second",
            sliding,
            "msg",
            limit + burst,
            "rate + burst allowed",
            better="lower",
            target=1.0,
        )
    ]


SCENARIOS = {"throughput": throughput, "precision": precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "scenario", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: both)"
    )
    parser.add_argument("--messages", type=int, default=5000, help="throughput: per run")
    parser.add_argument("--window", type=int, default=10, help="throughput: per bind")
    parser.add_argument("--senders", type=int, help="throughput: default 2 x binds x window")
    parser.add_argument("--rate", type=int, default=100, help="precision: the shared TPS")
    parser.add_argument("--processes", type=int, default=3, help="precision: sending processes")
    parser.add_argument("--rate-messages", type=int, default=1500, help="precision: in all")
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--rounds", type=int, default=3, help="throughput: turns each")
    parser.add_argument("--quick", action="store_true", help="5,000 messages; 480 at the rate")
    args = parser.parse_args()
    from worker.logging import configure_logging

    configure_logging("WARNING", "console")  # not a line per bind
    unknown = set(args.scenario) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}")
    if args.quick:
        args.messages, args.rate_messages = QUICK_MESSAGES, 480
    figures: list[Figure] = []
    for name in args.scenario or SCENARIOS:
        figures += SCENARIOS[name](args)
    report(figures)


if __name__ == "__main__":
    main()
