"""``loa demo``: the sample campaign from ``examples/``, end to end, in this process.

It uses its own SQLite ledger (``<var_dir>/demo.db``, made fresh each run) and the
in-memory broker whatever the settings say, so it runs the same on a fresh laptop and
on a production host without touching the production ledger or queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from ledger.db import describe_location
from ledger.summary import CampaignSummary
from worker.campaign.embedded import embedded_worker, wait_for_campaign
from worker.campaign.launch import launch
from worker.runtime import Runtime
from worker.settings import ProviderInstance, Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_SPEC = EXAMPLES / "bluezone.toml"
DEMO_LIST = EXAMPLES / "ninh-thuan-residents.csv"


@dataclass(frozen=True)
class DemoResult:
    summary: CampaignSummary
    ledger: str
    seconds: float


def demo_settings(settings: Settings) -> Settings:
    """The given settings, made embedded: a fresh SQLite file and no Redis."""
    providers = dict(settings.providers)
    providers.setdefault("sandbox", ProviderInstance(type="sandbox"))
    database = settings.var_dir / "demo.db"
    return settings.model_copy(
        update={
            "redis_url": None,
            "database_url": SecretStr(f"sqlite:///{database.as_posix()}"),
            "providers": providers,
        }
    )


def run_demo(
    settings: Settings,
    *,
    timeout: float = 300,
    on_progress: Callable[[CampaignSummary], None] | None = None,
) -> DemoResult:
    """Launch the sample campaign and wait for every recipient's final status."""
    settings = demo_settings(settings)
    database = settings.var_dir / "demo.db"
    for stale in (database, database.with_suffix(".db-wal"), database.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    runtime = Runtime(settings)
    try:
        runtime.ensure_schema()
        with embedded_worker(runtime) as broker:
            launched = launch(runtime, DEMO_SPEC, DEMO_LIST)
            summary = wait_for_campaign(
                runtime, broker, launched.campaign_id, timeout=timeout, on_progress=on_progress
            )
        return DemoResult(summary, describe_location(runtime.engine), time.monotonic() - started)
    finally:
        runtime.close()
