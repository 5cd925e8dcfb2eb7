"""Planning in a child process gives the same ledger as planning here, and its errors
reach the caller with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from benchmarks.generate_list import write as write_list
from campaigns.recipients import ListError
from campaigns.stream import fields_json
from ledger.schema import campaigns, messages, rejects
from worker.campaign.launch import launch
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml"


@pytest.fixture
def runtime(tmp_path, sqlite_url):
    settings = Settings(database_url=SecretStr(sqlite_url), var_dir=tmp_path)
    runtime = Runtime(settings)
    runtime.ensure_schema()
    use_broker(StubBroker(), settings)
    yield runtime
    runtime.close()


def snapshot(runtime: Runtime) -> tuple[list[tuple], list[tuple], dict]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                messages.c.recipient,
                messages.c.list_row,
                messages.c.batch,
                messages.c.carrier,
                messages.c.fields,
            ).order_by(messages.c.list_row)
        ).all()
        rejected = conn.execute(
            sa.select(rejects.c.list_row, rejects.c.reason).order_by(rejects.c.list_row)
        ).all()
        intake = conn.execute(sa.select(campaigns.c.intake)).scalar_one()
    return [tuple(r) for r in rows], [tuple(r) for r in rejected], intake


def test_a_child_process_plans_exactly_what_this_one_does(tmp_path, runtime):
    path = tmp_path / "list.csv"
    write_list(path, 12_000, seed=3)
    launch(runtime, EXAMPLE, path, parallel=False)
    here = snapshot(runtime)
    with runtime.engine.begin() as conn:
        for table in (messages, rejects, campaigns):
            conn.execute(table.delete())
    launched = launch(runtime, EXAMPLE, path, parallel=True)
    assert launched.created
    assert snapshot(runtime) == here
    assert here[2]["rows_read"] == 12_000
    kept = ("launched_by", "list_sha256")  # who launched, and the list's digest
    counts = {key: value for key, value in here[2].items() if key not in kept}
    assert launched.prepared.summary.as_dict() == counts
    assert "@" in here[2]["launched_by"]  # who launched: kept with the counts
    assert len(here[2]["list_sha256"]) == 64


def test_an_error_in_the_child_reaches_the_caller_and_nothing_is_written(tmp_path, runtime):
    path = tmp_path / "list.csv"
    write_list(path, 12_000, seed=3)
    with path.open("ab") as handle:
        # Not UTF-8, far past the sample: more rows than the few a UTF-8 list may reject
        # as damaged (campaigns.recipients.BAD_ENCODING_ROWS), so the list stops.
        handle.write("0912345678,Bình\n".encode("utf-16-le") * 20)
    with pytest.raises(ListError, match=r"row 12002 .*--encoding"):
        launch(runtime, EXAMPLE, path, parallel=True)
    with runtime.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 0


@given(st.lists(st.text(max_size=12), max_size=5).map(tuple))
def test_fields_json_is_json(values):
    assert json.loads(fields_json(values)) == list(values)


def test_a_planning_child_whose_parent_is_gone_ends_quietly(tmp_path, runtime):
    """The launch killed (kill -9) while its child plans: the child's next send finds the
    pipe broken, and telling the parent about that failed too, printing two chained
    BrokenPipeError tracebacks on the operator's terminal. Nobody is left to tell."""
    import multiprocessing

    from campaigns.stream import child_main
    from worker.campaign.planning import ListOptions, prepare

    path = tmp_path / "list.csv"
    write_list(path, 3_000, seed=3)
    prepared = prepare(runtime, EXAMPLE, path, ListOptions())
    receiving, sending = multiprocessing.Pipe(duplex=False)
    receiving.close()  # the parent is gone
    child_main(sending, prepared.planner, prepared.recipients, None)  # returns, raises nothing
    assert sending.closed
