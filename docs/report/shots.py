"""Make the report screenshots in this folder: two campaigns of 3,000 recipients (one
with every outcome and a few still waiting for a receipt, one cancelled half-way) in a
scratch ledger, their HTML reports and the day's report, shown by headless Chromium at
390 and 1280 pixels wide. From the repository's root:

    .venv/bin/python docs/report/shots.py [OUT_DIR]

Needs ``chromium``; ``pngquant``, when installed, makes the files about a third the size.
The sends are spread over the morning, events included, before the log is sealed
(``tests.ledger.report_scenes.spread``), so the timeline shows hours rather than the
seconds the scene takes to make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: What each screenshot shows: page, width, height (the top of the page; PNGs stay small).
SHOTS = {
    "campaign-390.png": ("campaign.html", 390, 2300),
    "campaign-1280.png": ("campaign.html", 1280, 2000),
    "cancelled-390.png": ("cancelled.html", 390, 1500),
    "daily-390.png": ("daily.html", 390, 1900),
    "daily-1280.png": ("daily.html", 1280, 1300),
}
MIXED = {"delivered": 2771, "undelivered": 112, "failed": 38, "unknown": 21, "sent": 58}
CANCELLED = {"delivered": 1502, "undelivered": 61, "failed": 17, "unknown": 12, "sent": 7,
             "cancelled": 1401}  # fmt: skip


def ledger(folder: Path) -> str:
    """A scratch ledger with the two campaigns, their sends spread over this morning."""
    from campaigns.hours import VIETNAM
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from tests.ledger.report_scenes import build, spec, spread

    url = f"sqlite:///{(folder / 'ledger.db').as_posix()}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(VIETNAM)
    morning = datetime.combine(now.date(), time(8, 5), VIETNAM)
    if now < morning + timedelta(hours=3.5):  # before the morning's sends would end
        morning -= timedelta(days=1)
    scenes = [
        (spec("bluezone-ninh-thuan-2026", "Cài đặt ứng dụng Bluezone — Ninh Thuận"), MIXED, 3),
        (
            spec(
                "tiem-chung-ninh-thuan-2026",
                "Nhắc lịch tiêm chủng — Ninh Thuận",
                messages={
                    "vi": "So Y te Ninh Thuan: moi quy vi tiem nhac lai vac xin COVID-19 tai tram y te "
                    "phuong/xa tu 01/12. Mang theo CCCD. Chi tiet: 1900 9095."
                },
            ),
            CANCELLED,
            1.5,
        ),
    ]
    for campaign, outcomes, hours in scenes:
        # Some of the cancelled were taken out to be sent and given back first (the rate
        # gate held them): the hour table counts them as never sent, as its note says.
        handed_back = 17 if "cancelled" in outcomes else 0
        build(engine, campaign, outcomes, blank_districts=4, unusable=37, handed_back=handed_back)
        spread(engine, campaign.id, morning, hours)
    engine.dispose()
    return url


def main(out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed (Debian: apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = {**os.environ, "LOA_DATABASE_URL": ledger(folder)}

        def loa(*args: str) -> None:
            subprocess.run([sys.executable, "-m", "scripts", *args], env=env, check=True, cwd=ROOT)

        loa("audit", "verify")
        loa("report", "bluezone-ninh-thuan-2026", "-o", str(folder / "campaign.html"))
        loa("report", "tiem-chung-ninh-thuan-2026", "-o", str(folder / "cancelled.html"))
        loa("report", "--daily", "today", "-o", str(folder / "daily.html"))
        for name, (page, width, height) in SHOTS.items():
            target = out / name
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--screenshot={target}", f"--window-size={width},{height}",
                 (folder / page).as_uri()],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            if shutil.which("pngquant"):
                subprocess.run(
                    ["pngquant", "--force", "--skip-if-larger", "--output", str(target), "64",
                     str(target)],
                    check=False,
                )  # fmt: skip
            print(f"{target} {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
