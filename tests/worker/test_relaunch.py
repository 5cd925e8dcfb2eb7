"""Launching a campaign id again, on real Redis: the same list puts back only batches whose
job Redis lost, another list (refused, exit 2 in the CLI) and a paused campaign put back
nothing. A refused command changes nothing, and a batch never gets a second job."""

from __future__ import annotations

import pytest

from tests.scripts.test_cli import EXAMPLE, small_list
from tests.worker.conftest import redis_runtime
from worker.campaign.control import pause, resume
from worker.campaign.launch import launch
from worker.runtime import Runtime
from worker.upkeep.recovery import live_jobs

pytestmark = pytest.mark.redis


@pytest.fixture
def runtime(engine, tmp_path, redis_namespace):
    with redis_runtime(engine, tmp_path, redis_namespace) as runtime:
        yield runtime


def jobs(runtime: Runtime) -> int:
    """How many ``send_batch`` jobs Redis holds, counted one by one (not as a set)."""
    client = runtime.redis()
    namespace = runtime.settings.redis_namespace
    return sum(
        client.hlen(key) for key in client.scan_iter(f"{namespace}:*.msgs") if b".DQ." not in key
    )


def test_the_same_list_again_gives_no_batch_a_second_job(runtime, tmp_path):
    listed = small_list(tmp_path)
    first = launch(runtime, EXAMPLE, listed)
    assert first.created and first.batches_enqueued == 1 and jobs(runtime) == 1

    again = launch(runtime, EXAMPLE, listed)
    assert (again.created, again.list_differs, again.batches_enqueued) == (False, False, 0)
    assert jobs(runtime) == 1

    runtime.redis().delete(*runtime.redis().keys(f"{runtime.settings.redis_namespace}:*"))
    assert live_jobs(runtime) == set()  # Redis lost its data: the relaunch puts it back
    assert launch(runtime, EXAMPLE, listed).batches_enqueued == 1 and jobs(runtime) == 1


def test_another_list_is_refused_and_enqueues_nothing(runtime, tmp_path):
    launch(runtime, EXAMPLE, small_list(tmp_path))
    runtime.redis().delete(*runtime.redis().keys(f"{runtime.settings.redis_namespace}:*"))
    other = tmp_path / "other.csv"
    other.write_text("Họ tên,Số điện thoại\nDũng,0913 000 111\n", encoding="utf-8")

    refused = launch(runtime, EXAMPLE, other)
    # Even with every job lost, a refused relaunch leaves that to the housekeeper.
    assert (refused.list_differs, refused.batches_enqueued, jobs(runtime)) == (True, 0, 0)


def test_another_list_of_the_same_name_and_rows_is_refused_by_its_digest(runtime, tmp_path):
    """Only the name and the rows were compared: a corrected list saved over the first
    (same name, same count) was taken as the same one and silently not sent."""
    listed = small_list(tmp_path)
    launch(runtime, EXAMPLE, listed)
    rows = listed.read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].replace(rows[1].split(",")[0], "0911111111", 1)
    listed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    refused = launch(runtime, EXAMPLE, listed)
    assert (refused.list_differs, refused.batches_enqueued) == (True, 0)


def test_a_paused_campaign_relaunched_stays_without_jobs_until_resumed(runtime, tmp_path):
    listed = small_list(tmp_path)
    campaign_id = launch(runtime, EXAMPLE, listed).campaign_id
    pause(runtime, campaign_id)
    runtime.redis().delete(*runtime.redis().keys(f"{runtime.settings.redis_namespace}:*"))

    assert launch(runtime, EXAMPLE, listed).batches_enqueued == 0 and jobs(runtime) == 0
    assert resume(runtime, campaign_id) == 1 and jobs(runtime) == 1


def test_a_changed_campaign_file_is_refused_naming_what_changed(runtime, tmp_path):
    """Another text or brandname under a launched id was "already launched: nothing added",
    exit 0, the change silently not applied; now the fields are named and nothing is
    done (the CLI exits 2), as with another list."""
    listed = small_list(tmp_path)
    launch(runtime, EXAMPLE, listed)
    runtime.redis().delete(*runtime.redis().keys(f"{runtime.settings.redis_namespace}:*"))
    edited = tmp_path / "edited.toml"
    edited.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace('brandname = "NinhThuan"', 'brandname = "SoTTTT"')
        .replace('validity = "12h"', 'validity = "6h"'),
        encoding="utf-8",
    )
    again = launch(runtime, edited, listed)
    assert again.spec_differs == ("brandname", "validity") and not again.list_differs
    assert again.refused and again.batches_enqueued == 0 and jobs(runtime) == 0
    same = launch(runtime, EXAMPLE, listed)
    assert (same.spec_differs, same.refused) == ((), False)
