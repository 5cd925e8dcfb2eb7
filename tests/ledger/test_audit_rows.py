"""A campaign's own row held to the log (issue #21, second attack review): its state, its
intake counts and its spec as launched, and an arrivals campaign's welcomes, each
arrival committing to the rows of its own batches. Played as the database's owner edits
them, through the path production takes (a launch, a day of arrivals), and caught by
``verify_log``; the honest ledger verifies first."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from ledger.audit.verify import verify_log
from ledger.chain import seal_all
from ledger.messages import cancel_campaign
from ledger.schema import campaigns
from tests.ledger.test_audit_tamper import campaign_with_events_plain, tamper
from tests.ledger.test_ledger import SPEC


def launched(engine) -> None:
    campaign_with_events_plain(engine, 4)
    seal_all(engine)
    verdict = verify_log(engine)
    assert verdict.ok, verdict.problems


def test_a_cancelled_campaign_shown_running_is_named(engine):
    launched(engine)
    cancel_campaign(engine, SPEC.id)
    assert verify_log(engine).ok
    tamper(engine, f"UPDATE campaigns SET state = 'running' WHERE id = '{SPEC.id}'")
    assert (
        f"campaign {SPEC.id}: its row says running, its events cancelled: the row was altered"
    ) in verify_log(engine).problems


def test_a_campaign_never_moved_is_running_or_scheduled(engine):
    launched(engine)
    tamper(engine, f"UPDATE campaigns SET state = 'paused' WHERE id = '{SPEC.id}'")
    assert (
        f"campaign {SPEC.id}: its row says paused, its events running: the row was altered"
    ) in verify_log(engine).problems


@pytest.mark.parametrize(
    ("column", "change", "needle"),
    [
        (
            "intake",
            lambda d: {**d, "rejected": 0, "launched_by": "auditor@dept"},
            "its intake counts",
        ),
        ("spec", lambda d: {**d, "prices": {}}, "its spec (prices, texts, sender)"),
    ],
    ids=["intake", "spec"],
)
def test_a_campaigns_intake_or_spec_rewritten_is_named(engine, column, change, needle):
    launched(engine)
    with engine.connect() as conn:
        value = conn.scalar(sa.select(campaigns.c[column]).where(campaigns.c.id == SPEC.id))
    edited = json.dumps(change(value)).replace("'", "''")
    tamper(engine, f"UPDATE campaigns SET {column} = '{edited}' WHERE id = '{SPEC.id}'")
    problems = verify_log(engine).problems
    assert any(p.startswith(f"campaign {SPEC.id}: {needle}") for p in problems), problems


def test_an_arrivals_campaign_verifies_and_its_welcomes_are_bound_to_their_arrival(
    engine, tmp_path
):
    """Two arrival files, each its own event committing to its batches' rows: the ledger
    verifies; two welcomes' parts and carriers inflated behind the log are named."""
    from tests.worker.test_arrivals import (
        CAMPAIGN,
        CONFIG,
        MORNING,
        NIGHT,
        morning_file,
        night_file,
        runtime_for,
    )
    from worker.arrivals.ingest import Ingest
    from worker.queues.broker import use_broker

    runtime = runtime_for(engine, tmp_path)
    use_broker(StubBroker(), runtime.settings)
    Ingest(runtime, CONFIG, clock=lambda: MORNING).run(morning_file())
    Ingest(runtime, CONFIG, clock=lambda: NIGHT).run(night_file())
    seal_all(engine)
    verdict = verify_log(engine)
    assert verdict.ok, verdict.problems
    tamper(
        engine,
        "UPDATE messages SET parts = parts * 5, carrier = 'viettel' WHERE id IN "
        "(SELECT id FROM messages ORDER BY id DESC LIMIT 2)",
    )
    assert (
        f"campaign {CAMPAIGN}: its messages' carriers or parts are not those its launch "
        "recorded: rows were altered"
    ) in verify_log(engine).problems


def test_the_housekeeper_under_another_log_name_checks_the_roots_and_does_not_vouch(
    engine, tmp_path, capsys
):
    """A log name changed in the settings (or every checkpoint signed again with another
    key) signs none of the checkpoints: the daily verification still checks every root,
    and records that the ledger's own key signed none, for the reports to show."""
    import base64

    from pydantic import SecretStr

    from ledger.audit.log import make_checkpoint
    from tests.ledger.test_audit_tamper import ORIGIN, SEED
    from worker.runtime import Runtime
    from worker.settings import Settings
    from worker.upkeep.housekeeping import _verify

    launched(engine)
    make_checkpoint(engine, ORIGIN, SEED)
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    secret = SecretStr(base64.b64encode(SEED).decode())
    settings = Settings(
        database_url=url, var_dir=tmp_path, audit_signing_key=secret, audit_log_name="loa/other"
    )
    verdict = _verify(Runtime(settings, engine=engine))
    # Every root held; but no report vouches for checkpoints its own key did not sign.
    (problem,) = verdict.problems
    assert verdict.broken is None and verdict.checkpoints >= 1
    assert problem.startswith("the ledger's key (LOA_AUDIT_SIGNING_KEY): the key loa/other+")
    assert "audit.key_signs_no_checkpoint" in capsys.readouterr().out


def test_messages_given_back_and_moved_to_a_fallback_are_not_held_to_their_old_claim(
    engine, tmp_path
):
    """A halt gives claimed messages back, moves them to the fallback provider, and the
    campaign is then cancelled: an honest ledger, and its export, verify (the provider
    of a message's last claim binds it only while that claim stands)."""
    from ledger.audit.export import export
    from ledger.halts import reroute
    from ledger.messages import claim_batch, release
    from tests.ledger.test_export import ORIGIN, SEED, check

    launched(engine)
    claimed = claim_batch(engine, SPEC.id, 1)
    release(engine, [m.id for m in claimed], code="provider_halted")
    assert reroute(engine, SPEC.id, 1, SPEC.provider, "fallback") == len(claimed)
    cancel_campaign(engine, SPEC.id)
    seal_all(engine)
    verdict = verify_log(engine)
    assert verdict.ok, verdict.problems
    export(engine, tmp_path / "export", SPEC.id, ORIGIN, SEED)
    result = check(tmp_path / "export")
    assert result.returncode == 0, result.stdout


def test_events_inserted_to_commit_to_an_altered_row_are_named(engine):
    """Third attack review: a second launch event committing to an altered spec and more
    rows read, and a state event reopening a cancelled campaign, are each named: a
    campaign is launched once, and nothing moves it out of cancelled."""
    from ledger.audit.rows import spec_digest

    launched(engine)
    cancel_campaign(engine, SPEC.id)
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.id == SPEC.id)).one()
    altered = {**row._asdict(), "spec": {**row.spec, "prices": {}}}
    edited = json.dumps(altered["spec"]).replace("'", "''")
    tamper(
        engine, f"UPDATE campaigns SET spec = '{edited}', state = 'running' WHERE id = '{SPEC.id}'"
    )
    inserted = json.dumps({"rows_read": 1000, "spec_digest": spec_digest(altered)})
    tamper(
        engine,
        "INSERT INTO events (campaign_id, at, source, to_status, detail) VALUES "
        f"('{SPEC.id}', '2026-12-01 00:00:00', 'planner', 'queued', '{inserted}'), "
        f"('{SPEC.id}', '2026-12-01 00:00:01', 'operator', NULL, '{{\"state\": \"running\"}}')",
    )
    problems = verify_log(engine).problems
    assert f"campaign {SPEC.id}: launched 2 times in the log, once in fact: made up" in problems
    assert (
        f"campaign {SPEC.id}: its events move it out of cancelled, which no rule allows: made up"
    ) in problems
    assert any(p.startswith(f"campaign {SPEC.id}: its spec (prices") for p in problems), problems


def test_an_arrivals_campaigns_spec_is_bound_by_every_arrival(engine, tmp_path):
    from tests.worker.test_arrivals import CAMPAIGN, CONFIG, MORNING, morning_file, runtime_for
    from worker.arrivals.ingest import Ingest
    from worker.queues.broker import use_broker

    runtime = runtime_for(engine, tmp_path)
    use_broker(StubBroker(), runtime.settings)
    Ingest(runtime, CONFIG, clock=lambda: MORNING).run(morning_file())
    assert verify_log(engine).ok
    tamper(engine, f"UPDATE campaigns SET brandname = 'FAKE' WHERE id = '{CAMPAIGN}'")
    problems = verify_log(engine).problems
    assert any(p.startswith(f"campaign {CAMPAIGN}: its spec (prices") for p in problems), problems
