"""What every benchmark hands in: a figure beside a reference measured in the same run.

These machines are shared: the same benchmark printed 164,000 rows/s one day and 46,000 the
next, on the same kind of machine, where a bare Python loop also ran three times slower.
An absolute figure cannot show progress or a regression across such days; its ratio to
something measured in the same run, on the same machine, under the same load, can. So each
benchmark measures a *reference* (the least the job needs: a bare loop, the database's own
``COPY``, ``python -c pass``) and reports each figure as a :class:`Figure` with both, the
subject and its reference interleaved so that the machine's mood falls on both alike.

A benchmark run by ``python -m benchmarks`` appends its figures, one JSON object a line, to
the file named by ``LOA_BENCH_FIGURES``; run by itself, it prints them as a table.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

FIGURES_ENV = "LOA_BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    """One measure of one benchmark and the reference it is judged against.

    Parameters
    ----------
    benchmark:
        The benchmark's module name (``plan``, ``receipts``).
    measure:
        What was measured, with its size: ``"1,000,000 rows into SQLite"``.
    value, reference:
        The figure and the reference's figure, in ``unit`` (both rates or both times).
    unit:
        ``"rows/s"``, ``"s"``, ``"ms"``, ``"msg/s"``: what both are counted in.
    reference_name:
        What the reference is: ``"csv + set + executemany"``.
    better:
        ``"higher"`` for rates, ``"lower"`` for times: which way the ratio improves.
    target:
        The ratio the figure is judged by, if it has one (a bound in ``better``'s sense).
    absolute:
        An absolute target and its verdict on this run, when the issue set one (``"p99
        28.6 ms, target < 20 ms: missed"``): shown beside the ratio's, read with the
        machine's day in mind.
    """

    benchmark: str
    measure: str
    value: float
    unit: str
    reference: float
    reference_name: str
    better: str = "lower"
    target: float | None = None
    absolute: str = ""

    @property
    def ratio(self) -> float:
        """``value / reference``: for a rate, the share of the reference's rate reached
        (0.53 of the bare loop); for a time, how many times the reference's time (2.9×)."""
        return self.value / self.reference if self.reference else float("nan")

    @property
    def verdict(self) -> str:
        """``""`` without a target, else ``"met"`` or ``"missed"``."""
        if self.target is None:
            return ""
        met = self.ratio >= self.target if self.better == "higher" else self.ratio <= self.target
        return "met" if met else "missed"

    def as_json(self) -> dict[str, Any]:
        """Plain JSON (no ``NaN``: a ratio over a zero reference is ``null``)."""
        return {**asdict(self), "ratio": self.ratio if math.isfinite(self.ratio) else None}

    @classmethod
    def from_json(cls, data: Any) -> Figure:
        """The figure a benchmark handed in, checked.

        Raises:
            ValueError: not an object of the fields above with their types: text for
                the names, finite numbers for the figure and its reference, ``higher``
                or ``lower`` for ``better``.
        """
        if not isinstance(data, dict):
            raise ValueError("a figure is a JSON object")
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name in ("benchmark", "measure", "unit", "reference_name", "absolute"):
            if name in fields and not isinstance(fields[name], str):
                raise ValueError(f"{name}: text expected")
        for name in ("value", "reference", "target"):
            number = fields.get(name)
            if name == "target" and number is None:
                continue
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"{name}: a number expected")
            if not math.isfinite(number):
                raise ValueError(f"{name}: a finite number expected")
        if fields.get("better", "lower") not in ("higher", "lower"):
            raise ValueError("better: 'higher' or 'lower'")
        try:
            return cls(**fields)
        except TypeError as missing:
            raise ValueError(str(missing)) from None


def rate(count: float, seconds: float) -> float:
    """``count / seconds``, or 0 for an instant (a rate of nothing measured)."""
    return count / seconds if seconds > 0 else 0.0


def interleaved(
    subject: Callable[[], float], reference: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """The medians of ``rounds`` runs of each, taken in turn: reference, subject, reference…

    Each callable returns its own figure (a duration or a rate). Alternating them puts a
    passing load on both alike, where measuring one and then the other would hand the
    whole of a busy minute to one side. Returns ``(subject's median, reference's median)``.
    """
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(max(1, rounds)):
        theirs.append(reference())
        ours.append(subject())
    return statistics.median(ours), statistics.median(theirs)


def autorange(
    call: Callable[[], object],
    at_least: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds one ``call`` takes, from as many calls as fill ``at_least`` seconds.

    A measure of a tenth of a second is a handful of the scheduler's time slices: on a
    loaded machine whether it got three of them or six is chance, and its ratio to a
    longer measure moves by half (seen: a 0.15 s reference, 2.8× slower under two busy
    processes where the 1.5 s subject beside it was 1.5× slower). Repeated to a second or
    more, both sides see the machine's average. Only for calls that can be repeated
    (reads, or writes undone inside the call). Like ``timeit``'s ``autorange``.
    ``clock=time.process_time`` counts this process's CPU seconds instead: for work in
    memory in this process alone, where the time a busy machine keeps it waiting is not
    the work's.
    """
    calls = 0
    started = clock()
    while True:
        call()
        calls += 1
        elapsed = clock() - started
        if elapsed >= at_least:
            return elapsed / calls


def seconds_of(call: Callable[[], object]) -> float:
    """Wall-clock seconds one call takes."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def number(value: float) -> str:
    """A figure as people read it: three significant digits, thousands grouped."""
    if value != value:  # NaN
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def ratio_text(figure: Figure) -> str:
    return number(figure.ratio) if figure.ratio == figure.ratio else "–"


def cell(text: str) -> str:
    """``text`` as one Markdown table cell: no line break, no column break."""
    return " ".join(text.split()).replace("|", "/")


def key(figure: Figure) -> tuple[str, str, str]:
    """What makes a figure the same one from run to run."""
    return figure.benchmark, figure.measure, figure.reference_name


def moved(figure: Figure, then: float) -> str:
    """How far the ratio moved since ``then``, and whether that is for the better."""
    change = (figure.ratio / then - 1) * 100 if then else float("nan")
    if change != change:
        return "–"
    if abs(change) < 0.5:
        return "±0 %"
    better = (change > 0) == (figure.better == "higher")
    return f"{change:+.0f} % {'better' if better else 'worse'}"


def table(
    figures: Iterable[Figure], before: dict[tuple[str, str, str], float] | None = None
) -> list[str]:
    """Markdown table rows: benchmark, measure, figure, reference, ratio (↑ when higher is
    better, ↓ when lower is), targets; with ``before`` (each figure's ratio in an earlier
    run, by :func:`key`), that ratio and how far this one moved from it."""
    head = "| benchmark | measure | figure | reference | ratio | target |"
    rule = "|---|---|---:|---:|---:|---|"
    if before is not None:
        head += " last run | moved |"
        rule += "---:|---|"
    lines = [head, rule]
    for f in figures:
        targets = []
        if f.target is not None:
            sign = "≥" if f.better == "higher" else "≤"
            targets.append(f"{sign} {f.target:g}: {f.verdict}")
        if f.absolute:
            targets.append(f.absolute)
        arrow = "↑" if f.better == "higher" else "↓"
        unit = cell(f.unit)
        line = (
            f"| {cell(f.benchmark)} | {cell(f.measure)} | {number(f.value)} {unit} "
            f"| {number(f.reference)} {unit} ({cell(f.reference_name)}) | {ratio_text(f)} {arrow} "
            f"| {cell('; '.join(targets))} |"
        )
        if before is not None:
            then = before.get(key(f))
            line += f" {number(then)} | {moved(f, then)} |" if then is not None else " | |"
        lines.append(line)
    return lines


def report(figures: list[Figure]) -> None:
    """Hand the figures in: appended to ``$LOA_BENCH_FIGURES`` when the suite runs, and
    printed as a table in any case."""
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for figure in figures:
                out.write(json.dumps(figure.as_json(), ensure_ascii=False, allow_nan=False) + "\n")
    print("\n".join(table(figures)))
