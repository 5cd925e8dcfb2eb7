"""A campaign file names its provider: without one it is refused, naming the key and how
to find the configured ones, never sent through a provider nobody chose."""

from __future__ import annotations

import re

from tests.rig import ROOT
from tests.scripts.test_cli import EXAMPLE, loa, small_list

ARRIVALS = ROOT / "examples" / "arrivals.toml"


def _without_provider(text: str) -> str:
    cut, count = re.subn(r'(?m)^provider = "[^"]*".*\n', "", text)
    assert count == 1
    return cut


def test_a_campaign_file_without_provider_is_refused_naming_it(tmp_path):
    spec = tmp_path / "no-provider.toml"
    spec.write_text(_without_provider(EXAMPLE.read_text(encoding="utf-8")), encoding="utf-8")
    recipients = small_list(tmp_path)
    for command in ("plan", "launch"):
        done = loa("campaign", command, str(spec), "-r", str(recipients), cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert f"{spec}: provider: required" in lines[0]
        assert "loa provider list" in lines[0]
    # Nothing was recorded by the refused launch.
    assert loa("campaign", "status", "bluezone-ninh-thuan", cwd=tmp_path).returncode == 2
    # The same file naming its provider plans.
    named = loa("campaign", "plan", str(EXAMPLE), "-r", str(recipients), cwd=tmp_path)
    assert named.returncode == 0, named.stderr


def test_arrival_rules_without_provider_are_refused_naming_it(tmp_path):
    rules = tmp_path / "arrivals.toml"
    rules.write_text(_without_provider(ARRIVALS.read_text(encoding="utf-8")), encoding="utf-8")
    feed = tmp_path / "arrivals.csv"
    feed.write_text("event_id,phone,arrived_at,area\n", encoding="utf-8")
    done = loa("arrivals", "ingest", str(feed), "--rules", str(rules), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{rules}: provider: required" in done.stderr
    assert feed.exists()  # not taken


def test_the_readme_says_the_provider_is_required():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `provider` |"))
    assert "required" in row and "default" not in row, row
