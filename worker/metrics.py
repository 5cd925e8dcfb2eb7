"""Prometheus metrics of Loa's own, next to dramatiq's (jobs, retries, durations).

- ``loa_messages_total{provider, outcome}``: what each send came to (sent, failed,
  unknown, retry, halt, expired).
- ``loa_rate_wait_seconds_total{provider}``: time spent waiting for the provider's tokens.

``loa worker`` serves them with dramatiq's exposition server (``LOA_METRICS_PORT``, default
9191). Worker processes write through prometheus-client's multiprocess mode, so the
counters are set up after each process boots, in the middleware below; in a process
without it (the embedded mode) counting does nothing.
"""

from __future__ import annotations

import os
from typing import Any

from dramatiq.middleware import Middleware

_counters: dict[str, Any] = {}


class LoaMetrics(Middleware):
    """Creates Loa's counters in each worker process (after dramatiq's Prometheus
    middleware has pointed prometheus-client at its multiprocess directory)."""

    def after_process_boot(self, broker: Any) -> None:
        # dramatiq calls after_* hooks in reverse order, so this may run before its own
        # Prometheus middleware: point prometheus-client at the shared directory here too,
        # before its first import in this process (it picks its storage at import time).
        from dramatiq.middleware.prometheus import DB_PATH

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = DB_PATH
        import prometheus_client as prom

        registry = prom.CollectorRegistry()
        _counters["messages"] = prom.Counter(
            "loa_messages_total",
            "Sends by provider and outcome.",
            ["provider", "outcome"],
            registry=registry,
        )
        _counters["waited"] = prom.Counter(
            "loa_rate_wait_seconds_total",
            "Seconds spent waiting for the provider's rate-limit tokens.",
            ["provider"],
            registry=registry,
        )


def count_outcome(provider: str, outcome: str, messages: int = 1) -> None:
    counter = _counters.get("messages")
    if counter is not None and messages:
        counter.labels(provider, outcome).inc(messages)


def count_wait(provider: str, seconds: float) -> None:
    counter = _counters.get("waited")
    if counter is not None and seconds > 0:
        counter.labels(provider).inc(seconds)
