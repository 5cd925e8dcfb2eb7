"""The spool: provider ids a batch could not record while the ledger was away, written
when it is back, so that their receipts still land."""

from __future__ import annotations

import json
import stat

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.messages import apply_receipt, claim_batch, record_outcome
from ledger.schema import messages
from ledger.summary import status_counts
from tests.helpers import record
from tests.worker.test_dispatch import SPEC, runtime_with_campaign
from worker.sending.spool import Spool


def provider_ids(engine) -> dict[int, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(messages.c.id, messages.c.provider_message_id)).all())


def test_spooled_ids_are_written_when_the_ledger_is_back(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    spool = Spool(tmp_path / "spool")
    accepted = [(m.id, f"P{m.id}") for m in claimed[:15]]
    spool.sent(SPEC.id, accepted)  # the provider took 15; the ledger was away
    spool.outcome(claimed[15].id, Status.FAILED, "108")
    # Meanwhile the reaper took one of them for lost: it may have gone out.
    record_outcome(engine, claimed[0].id, Status.UNKNOWN, "reaper", "claim_abandoned")

    assert spool.replay(engine) == 16
    assert spool.pending() == []  # written once, then gone
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.SENT], counts[Status.UNKNOWN], counts[Status.FAILED]) == (14, 1, 1)
    ids = provider_ids(engine)
    assert all(ids[m] == pid for m, pid in accepted)  # the unknown one too
    # So its receipt lands, and corrects it.
    assert apply_receipt(engine, "sandbox", f"P{claimed[0].id}", Status.DELIVERED, None).moved


def test_a_spool_file_is_the_owners_whole_or_nothing_and_never_follows_a_link(tmp_path):
    spool = Spool(tmp_path / "spool")
    written = spool.sent("c", [(1, "P1")])
    assert written is not None and written.suffix == ".jsonl"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert not list(written.parent.glob("*.tmp"))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked").symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a folder of Loa's own"):
        Spool(tmp_path / "linked").sent("c", [(1, "P1")])
    assert list(elsewhere.iterdir()) == []


def test_an_unreadable_spool_file_is_set_aside_and_the_rest_still_replayed(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    spool = Spool(tmp_path / "spool")
    spool.sent(SPEC.id, [(claimed[0].id, "P1")])
    (tmp_path / "spool" / "results-0-garbage.jsonl").write_text("{not json\n")
    assert spool.replay(engine) == 1
    assert [p.name for p in (tmp_path / "spool").iterdir()] == ["results-0-garbage.bad"]
    assert provider_ids(engine)[claimed[0].id] == "P1"


def test_a_batch_whose_ledger_goes_away_spools_what_the_provider_accepted(engine, tmp_path):
    """Through the production path: the provider accepts, the ledger refuses the record;
    the batch stops and the ids are in the spool, not lost."""
    from tests.worker.test_dispatch import Recording, runtime_for
    from worker.sending.dispatch import send_batch

    runtime_with_campaign(engine, tmp_path)
    provider = Recording()
    runtime = runtime_for(engine, tmp_path, provider)
    real = runtime.statement_engine

    class Away:
        """The ledger for the hot path, gone once the provider has answered."""

        def __getattr__(self, name):
            return getattr(real, name)

        def begin(self):
            if provider.sent:
                raise sa.exc.OperationalError("UPDATE messages", {}, ConnectionError("gone"))
            return real.begin()

    runtime._statement_engine = Away()
    with pytest.raises(sa.exc.OperationalError):
        send_batch(runtime, SPEC.id, 1)
    assert provider.sent  # some went out …
    runtime._statement_engine = real
    assert runtime.spool.replay(engine) == len(provider.sent)  # … and none is lost
    ids = provider_ids(engine)
    assert {ids[m.message_id] for m in provider.sent} == {f"R{m.message_id}" for m in provider.sent}


def test_replay_believes_only_what_a_batch_could_have_written(engine, tmp_path):
    """A planted spool file cannot fail a queued message, cancel one, nor give a message
    of another campaign a provider id; a value the ledger refuses sets the file aside
    without blocking the next one."""
    runtime_with_campaign(engine, tmp_path)
    with engine.connect() as conn:
        first, second = conn.scalars(sa.select(messages.c.id).order_by(messages.c.id)).all()[:2]
    spool = Spool(tmp_path / "spool")
    folder = spool._folder()
    forged = [
        {"op": "outcome", "id": first, "status": "failed", "code": "forged"},
        {"op": "sent", "campaign": "another", "id": second, "pid": "FORGED"},
    ]
    (folder / "a.jsonl").write_text("".join(json.dumps(e) + "\n" for e in forged))
    (folder / "b.jsonl").write_text('{"op":"outcome","id":1,"status":"cancelled","code":"x"}\n')
    (folder / "c.jsonl").write_text(
        '{"op":"sent","campaign":"x","id":99999999999999999999,"pid":"p"}\n'
    )
    assert spool.replay(engine) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["b.bad", "c.bad"]
    counts = status_counts(engine, SPEC.id)
    assert counts[Status.QUEUED] == 20  # the first still queued, not failed
    assert set(provider_ids(engine).values()) == {None}


def test_a_spool_folder_others_may_write_is_not_read(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    spool = Spool(tmp_path / "spool")
    spool.sent(SPEC.id, [(claimed[0].id, "P1")])
    (tmp_path / "spool").chmod(0o777)
    assert spool.pending() == [] and spool.replay(engine) == 0
    with pytest.raises(OSError):
        spool.check_writable()
    (tmp_path / "spool").chmod(0o700)
    assert spool.replay(engine) == 1


def test_a_spooled_id_is_believed_only_for_the_campaign_it_names(engine, tmp_path):
    """Two campaigns sending at once. A spool entry names campaign A and a message id
    that is campaign B's (a file from another ledger, or planted): the id must not become
    the provider id of B's message, though that message is open to one (``sending``,
    or ``unknown`` after the reaper), or a receipt meant for somebody else would settle
    it. A's own entry in the same file is written."""
    runtime_with_campaign(engine, tmp_path)
    other = SPEC.model_copy(update={"id": "other-campaign"})
    record(engine, other, [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(3)])
    mine = claim_batch(engine, SPEC.id, 1)[0]
    theirs = claim_batch(engine, other.id, 1)
    record_outcome(engine, theirs[1].id, Status.UNKNOWN, "reaper", "claim_abandoned")

    spool = Spool(tmp_path / "spool")
    spool.sent(SPEC.id, [(mine.id, "P-MINE"), (theirs[0].id, "P-X0"), (theirs[1].id, "P-X1")])
    assert spool.replay(engine) == 1
    ids = provider_ids(engine)
    assert ids[mine.id] == "P-MINE"
    assert (ids[theirs[0].id], ids[theirs[1].id]) == (None, None)
    counts = status_counts(engine, other.id)
    assert (counts[Status.SENDING], counts[Status.UNKNOWN], counts[Status.SENT]) == (2, 1, 0)
    assert not apply_receipt(engine, "sandbox", "P-X1", Status.DELIVERED, None).matched
