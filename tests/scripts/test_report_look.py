"""The HTML report as a phone shows it: the demo campaign's report rendered by headless
Chromium (Debian's ``chromium``, which ``.ci/run`` installs) at 390 pixels wide.

A probe script added to a copy of the page (shown in a 390-pixel frame) reports in the
browser's console what it laid out: the page's
width, the charts' drawn parts, any element sticking out of the viewport (tables may
scroll inside their own box; nothing may widen the page). The browser's console is read
from its log: the probe's own line must be there, so a log that says nothing proves
nothing and fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from campaigns.hours import VIETNAM
from scripts.reports.html import POLICY
from tests.scripts.test_cli import loa

WIDTH = 390
#: First thing in the page: every request the page's policy refused, and every error.
WATCH = """<script>
window.refused = [];
document.addEventListener("securitypolicyviolation", (e) => refused.push(e.blockedURI));
</script>"""
PROBE = """<script>
window.addEventListener("load", () => {
  const outside = [...document.body.querySelectorAll("*")].filter((e) => {
    const box = e.getBoundingClientRect();
    return box.right > window.innerWidth + 0.5 && !e.closest(".scroll");
  });
  const found = {
    page_width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    timeline_lines: document.querySelectorAll("svg.timeline polyline.series").length,
    timeline_width: Math.round(document.querySelector("svg.timeline").getBoundingClientRect().width),
    rate_bars: document.querySelectorAll(".rates .bar").length,
    // A district's name on one or two lines, never a word a line.
    group_lines: Math.max(...[...document.querySelectorAll("table[data-breakdown^=by_] td.g")]
      .map((e) => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)))),
    campaign_lines: Math.max(...[...document.querySelectorAll("table[data-breakdown=that_day] tbody td.g")]
      .map((e) => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)))),
    // Each breakdown's total column in view without scrolling its table.
    totals_hidden: [...document.querySelectorAll("table[data-breakdown] .sum")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5).length,
    outside: outside.map((e) => e.tagName + "." + e.className),
    // Each chart's drawn width and its lines (the goal's: reached, pace, target).
    charts: [...document.querySelectorAll("svg.timeline")].map((e) => [
      Math.round(e.getBoundingClientRect().width), e.querySelectorAll("polyline").length]),
    goal_rows: document.querySelectorAll("table.goal tbody tr").length,
    // A district's name in the goal's table on one or two lines, never a word a line.
    goal_name_lines: Math.max(0, ...[...document.querySelectorAll("table.goal .name")]
      .map((e) => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e.parentElement).lineHeight)))),
    goal_share_hidden: [...document.querySelectorAll("table.goal tr > :nth-child(2)")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5).length,
    requests: performance.getEntriesByType("resource").map((e) => e.name),
    refused: window.refused,
  };
  console.log("probe:" + JSON.stringify(found));
});
</script>"""
#: Headless Chromium lays a window out at least 500 pixels wide; a frame is as narrow as
#: it is told, as a phone's screen is.
FRAME = '<!doctype html><body style="margin:0"><iframe src="{src}" width="{width}" height="2600"></iframe>'


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def browse(browser: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page`` with no network at all (every name unresolvable)."""
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            f"--window-size={WIDTH},2600",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def probe(browser: str, report: Path, folder: Path, name: str) -> dict:
    """What Chromium laid out of ``report`` in a 390-pixel frame (the PROBE's line);
    ``name``: the probed copy's (plain ASCII: the frame's address)."""
    page = report.read_text(encoding="utf-8")
    # The probe needs to run a script: the copy's policy allows inline scripts, nothing else.
    probed = folder / f"probed-{name}.html"
    probed.write_text(
        page.replace(POLICY, POLICY + "; script-src 'unsafe-inline'")
        .replace("<head>", "<head>" + WATCH)
        .replace("</body>", PROBE + "</body>"),
        encoding="utf-8",
    )
    frame = folder / "phone.html"
    frame.write_text(FRAME.format(src=probed.name, width=WIDTH), encoding="utf-8")
    run = browse(browser, frame)
    assert run.returncode == 0, run.stderr[-2000:]
    console = re.findall(r"CONSOLE[^\n]*", run.stderr)
    probes = [line for line in console if '"probe:' in line]
    assert len(probes) == 1, run.stderr[-2000:]
    assert [line for line in console if line not in probes] == []  # no error, no warning
    return json.loads(re.search(r'"probe:(.*)", source:', probes[0]).group(1).replace('\\"', '"'))


def test_the_demo_report_reads_on_a_phone(tmp_path, tmp_path_factory):
    browser = chromium()
    from tests.scripts.demo_run import demo_in

    demo = demo_in(tmp_path, tmp_path_factory)
    assert demo.returncode == 0, demo.stderr
    campaign, launched = (json.loads(demo.stdout)[k] for k in ("campaign", "created_at"))
    env = {"LOA_DATABASE_URL": f"sqlite:///{(tmp_path / 'var' / 'demo.db').as_posix()}"}
    report = tmp_path / "báo-cáo.html"
    made = loa(
        "report", campaign, "-f", "html", "-o", str(report), "--verify", cwd=tmp_path, env=env
    )
    assert made.returncode == 0, made.stderr
    page = report.read_text(encoding="utf-8")
    assert POLICY in page  # the page itself forbids any request and any script

    found = probe(browser, report, tmp_path, "campaign")
    assert found["viewport"] == WIDTH
    assert found["page_width"] <= WIDTH, found
    assert found["outside"] == [], found
    assert found["requests"] == found["refused"] == [], found  # nothing fetched, nothing tried
    assert found["timeline_lines"] == 2  # sends and deliveries
    assert found["timeline_width"] >= WIDTH - 80, found  # the page's width, less the axis
    assert found["rate_bars"] == 7  # the demo's seven districts
    assert found["group_lines"] <= 2, found
    assert found["totals_hidden"] == 0, found

    # The day's report: the campaign by name and id, its real state, nothing off the page.
    daily = tmp_path / "ngày.html"
    day = datetime.fromisoformat(launched).astimezone(VIETNAM).date().isoformat()
    made = loa("report", "--daily", day, "-o", str(daily), cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    seen = probe(browser, daily, tmp_path, "daily")
    assert seen["page_width"] <= WIDTH and seen["outside"] == [], seen
    assert seen["totals_hidden"] == 0, seen
    assert seen["campaign_lines"] <= 5, seen  # a name on two or three lines, its id on two
    text = daily.read_text(encoding="utf-8")
    assert "Đã hoàn tất" in text and campaign in text and ">running<" not in text

    shot = tmp_path / "report.png"
    taken = browse(browser, report, f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert png_size(shot)[0] == WIDTH
    assert shot.stat().st_size > 50_000  # a page of text and charts, not a blank one


def test_a_goal_s_section_reads_on_a_phone(tmp_path):
    """The goal's table and its chart of the share day by day, at 390 pixels: nothing
    off the page, the chart the page's width, its three lines drawn (looked at, too:
    ``goal.png`` beside the test's files)."""
    from datetime import timedelta

    browser = chromium()
    examples = Path(__file__).resolve().parents[2] / "examples"
    today = datetime.now(VIETNAM).date()
    goal = (examples / "bluezone-goal.toml").read_text("utf-8")
    goal = re.sub(r"deadline = .*", f"deadline = {today + timedelta(days=20)}", goal)
    (tmp_path / "bluezone-goal.toml").write_text(goal, "utf-8")
    shutil.copy(examples / "bluezone-population.csv", tmp_path)
    spec = tmp_path / "c.toml"
    spec.write_text('goal = "bluezone-goal.toml"\n' + (examples / "bluezone.toml").read_text(
        "utf-8"), "utf-8")  # fmt: skip
    districts = ["Ninh Hải", "Ninh Sơn", "Phan Rang–Tháp Chàm", "Thuận Nam", "Đà Lạt"]
    rows = "".join(f"09123{i:05d},{districts[i % 5]}\n" for i in range(50))
    (tmp_path / "list.csv").write_text("phone,Huyện/Thành phố\n" + rows, "utf-8")
    assert loa("campaign", "launch", str(spec), "-r", "list.csv", cwd=tmp_path).returncode == 0
    counts = "".join(f"{d},{today - timedelta(days=n)},{100 * (3 - n)}\n"
                     for n in (2, 1, 0) for d in districts[:4])  # fmt: skip
    (tmp_path / "counts.csv").write_text("area,date,count\n" + counts, "utf-8")
    imported = loa("outcomes", "import", "counts.csv", "--goal", "bluezone-goal.toml",
                   cwd=tmp_path)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    report = tmp_path / "bao-cao.html"
    assert (
        loa("report", "bluezone-ninh-thuan-2020", "-o", str(report), cwd=tmp_path).returncode == 0
    )
    found = probe(browser, report, tmp_path, "goal")
    assert found["page_width"] <= WIDTH and found["outside"] == [], found
    assert found["goal_rows"] == 7 + 1  # the seven districts, and Đà Lạt's apart
    assert found["goal_name_lines"] <= 2 and found["goal_share_hidden"] == 0, found
    (goal_chart,) = [chart for chart in found["charts"] if chart[1] == 3]  # the timeline: 2
    assert goal_chart[0] >= WIDTH - 80, found
    shot = tmp_path / "goal.png"
    taken = browse(browser, report, f"--screenshot={shot}")
    assert taken.returncode == 0 and png_size(shot)[0] == WIDTH
