"""The audit log against someone who runs the database (issue #21): each tampering an
attacker with write access can do, played through the ledger's own tables and caught by
``verify_log`` with a message naming what was altered; and the honest log, checkpointed
as it grows, verifying with its key."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger.audit import checkpoints as notes
from ledger.audit.log import make_checkpoint
from ledger.audit.verify import verify_log
from ledger.chain import record_verdict, seal_all
from ledger.schema import checkpoints
from tests.ledger.chain_rig import independent_root
from tests.ledger.test_chain import campaign_with_events

SEED = bytes(range(1, 33))
OTHER_SEED = bytes(range(101, 133))
ORIGIN = "loa/ninh-thuan"
KEY = (ORIGIN, notes.public_of(SEED))


def tamper(engine, sql: str) -> None:
    """``sql`` as a database administrator runs it: on PostgreSQL, with the append-only
    triggers switched off for the transaction (``session_replication_role``), as anyone
    who owns the database can."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(sql)


def checkpointed(engine, count: int = 10) -> notes.Checkpoint:
    """A campaign's events, sealed and checkpointed with the ledger's key."""
    campaign_with_events(engine, count)
    seal_all(engine)
    return make_checkpoint(engine, ORIGIN, SEED)


def rechain(engine) -> None:
    """What an attacker does after editing events: drop the seals and seal everything
    again, so that the chain holds over the edited events."""
    tamper(engine, "DELETE FROM seals")
    seal_all(engine)


def test_an_honest_log_checkpointed_as_it_grows_verifies_with_its_key(engine):
    first = checkpointed(engine)
    campaign_with_events_again(engine)
    seal_all(engine)
    second = make_checkpoint(engine, ORIGIN, SEED)
    assert first.size < second.size
    assert second.root.hex() == independent_root(engine, second.size)
    verdict = verify_log(engine, KEY, held=[notes.parse(first.text)])
    assert verdict.ok, verdict.problems
    assert verdict.checkpoints == 3 and verdict.root == second.root.hex()


def campaign_with_events_again(engine) -> None:
    from ledger.messages import claim_batch, release
    from tests.ledger.test_ledger import SPEC

    claimed = claim_batch(engine, SPEC.id, 1)
    release(engine, [m.id for m in claimed[:3]], code="again")


def test_a_status_updated_in_the_table_is_named_though_the_log_is_intact(engine):
    """``UPDATE messages SET status = 'delivered' WHERE status = …`` leaves every event
    and seal as they were: the rows now disagree with their events."""
    checkpointed(engine)
    tamper(engine, "UPDATE messages SET status = 'delivered' WHERE status = 'queued'")
    verdict = verify_log(engine, KEY)
    assert verdict.broken is None and not verdict.ok
    named = [p for p in verdict.problems if p.startswith("message ")]
    assert len(named) == 5 and all(  # the five given back; the others are ``sending``
        "its row says delivered, its events say queued: the row was altered" in p for p in named
    )


def test_many_altered_rows_are_counted_after_the_first_named(engine):
    checkpointed(engine, count=30)
    tamper(engine, "UPDATE messages SET status = 'delivered'")
    problems = verify_log(engine, KEY).problems
    assert len(problems) == 21 and problems[-1] == "… 10 more messages whose rows disagree"
    assert problems[0].startswith("message 1 ")


def test_events_rewritten_and_rechained_no_longer_have_the_checkpoints_root(engine):
    checkpointed(engine)
    tamper(engine, "UPDATE events SET to_status = 'delivered' WHERE to_status = 'queued'")
    tamper(
        engine,
        "UPDATE messages SET status = 'delivered', final_at = updated_at WHERE status = 'queued'",
    )
    rechain(engine)
    verdict = verify_log(engine, KEY)
    assert verdict.broken is None  # the chain was made to hold again
    (found,) = verdict.problems
    assert found.startswith("checkpoint #1 (") and found.endswith(
        "the first 16 events no longer hash to its root: rewritten"
    )


def test_a_recorded_verdict_catches_a_rewrite_even_with_no_checkpoint(engine):
    campaign_with_events(engine)
    seal_all(engine)
    record_verdict(engine, verify_log(engine))
    tamper(engine, "UPDATE events SET code = 'forged' WHERE id = 3")
    rechain(engine)
    (found,) = verify_log(engine).problems
    assert found.startswith("the verification of ") and found.endswith(
        "(16 events): the first 16 events no longer hash to its root: rewritten"
    )


def test_a_log_cut_back_is_shorter_than_its_checkpoint(engine):
    checkpointed(engine)
    tamper(engine, "DELETE FROM seals WHERE seq > 12")
    tamper(engine, "DELETE FROM events WHERE id > 12")
    (found,) = [p for p in verify_log(engine, KEY).problems if p.startswith("checkpoint")]
    assert found.endswith("the log has only 12 sealed events: 4 were cut off")


def test_everything_rechained_and_resigned_with_a_new_key_fails_the_auditors_checkpoint(engine):
    """The attacker rewrites events, re-chains, deletes every checkpoint and verdict and
    signs a fresh checkpoint with a key of their own: the checkpoint the auditor was sent
    no longer matches, and the new one is not signed by the ledger's key."""
    held = checkpointed(engine)
    tamper(engine, "UPDATE events SET code = 'forged' WHERE id = 5")
    rechain(engine)
    tamper(engine, "DELETE FROM checkpoints")
    tamper(engine, "DELETE FROM verifications")
    make_checkpoint(engine, ORIGIN, OTHER_SEED)
    problems = verify_log(engine, KEY, held=[notes.parse(held.text)]).problems
    assert any("not signed by the key loa/ninh-thuan+" in p for p in problems)
    assert any(
        p.startswith("the checkpoint you hold (16 events")
        and p.endswith("no longer hash to its root: rewritten")
        for p in problems
    )


def test_an_old_checkpoint_replayed_over_a_shorter_log_is_caught_by_the_one_held(engine):
    """The auditor holds the checkpoint of 16 events; the ledger is cut back to 12 and
    shows only an older checkpoint of that size."""
    campaign_with_events(engine)
    seal_all(engine)
    tamper(engine, "DELETE FROM seals WHERE seq > 12")
    older = make_checkpoint(engine, ORIGIN, SEED)
    seal_all(engine)
    held = make_checkpoint(engine, ORIGIN, SEED)
    tamper(engine, "DELETE FROM seals WHERE seq > 12")
    tamper(engine, f"DELETE FROM checkpoints WHERE id <> {checkpoint_id(engine, older)}")
    tamper(engine, "DELETE FROM events WHERE id > 12")
    problems = verify_log(engine, KEY, held=[notes.parse(held.text)]).problems
    (found,) = [p for p in problems if p.startswith("the checkpoint you hold")]
    assert found.startswith("the checkpoint you hold (16 events") and found.endswith(
        "the log has only 12 sealed events: 4 were cut off"
    )


def checkpoint_id(engine, checkpoint: notes.Checkpoint) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(checkpoints.c.id).where(checkpoints.c.note == checkpoint.text))


def test_a_checkpoint_row_whose_root_was_changed_differs_from_its_note(engine):
    checkpointed(engine)
    tamper(engine, f"UPDATE checkpoints SET root = '{'0' * 64}'")
    (found,) = verify_log(engine, KEY).problems
    assert found.endswith("its row differs from its signed note: altered")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            lambda text: text.replace("\n16\n", "\n17\n"),
            "does not hold: the checkpoint was altered",
        ),
        (lambda text: text.replace("— loa/ninh-thuan", "— loa/other"), "not signed by the key"),
    ],
    ids=["size edited", "signer renamed"],
)
def test_a_forged_checkpoint_note_is_refused(engine, edit, said):
    held = checkpointed(engine)
    forged = notes.parse(edit(held.text))
    problems = verify_log(engine, KEY, held=[forged]).problems
    assert any(said in p for p in problems), problems


def test_without_the_key_the_roots_are_checked_but_not_who_signed(engine):
    checkpointed(engine)
    make_checkpoint(engine, ORIGIN, OTHER_SEED)
    assert verify_log(engine).ok
    assert not verify_log(engine, KEY).ok


def test_a_signed_note_is_what_the_go_note_format_writes():
    note = notes.sign(ORIGIN, 16, bytes(32), __import__("datetime").datetime(2026, 12, 1), SEED)
    body, signature = note.text.split("\n\n")
    assert body.split("\n")[:3] == [ORIGIN, "16", base64.b64encode(bytes(32)).decode()]
    assert signature.startswith("— loa/ninh-thuan ") and signature.endswith("\n")
    raw = base64.b64decode(signature.split()[-1])
    assert raw[:4] == notes.key_id(ORIGIN, KEY[1]) and len(raw) == 68
    vkey = notes.verifier_key(ORIGIN, KEY[1])
    assert notes.parse_verifier_key(vkey) == KEY
    notes.check(notes.parse(note.text), *KEY)


def test_the_housekeeper_signs_a_checkpoint_when_one_is_due_and_only_then(engine, tmp_path):
    from pydantic import SecretStr

    from worker.runtime import Runtime
    from worker.settings import Settings
    from worker.upkeep.housekeeping import checkpoint_due

    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    unkeyed = Runtime(Settings(database_url=url, var_dir=tmp_path), engine=engine)
    assert checkpoint_due(unkeyed) is None  # no key: nothing to sign with
    secret = SecretStr(base64.b64encode(SEED).decode())
    settings = Settings(
        database_url=url, var_dir=tmp_path, audit_signing_key=secret, audit_log_name=ORIGIN
    )
    runtime = Runtime(settings, engine=engine)
    campaign_with_events(engine)  # unsealed: the chore seals them first
    first = checkpoint_due(runtime)
    assert first is not None and first.size == 16
    assert checkpoint_due(runtime) is None  # the newest is younger than the period
    tamper(engine, "UPDATE checkpoints SET at = '2020-01-01 00:00:00'")  # an hour and more ago
    assert checkpoint_due(runtime).size == 16
    assert verify_log(engine, KEY).ok


def test_a_receipt_made_up_after_the_real_one_is_named_though_it_was_sealed(engine):
    """Undelivered, then a 'delivered' event inserted and the row set to match: sealed
    like any other, but no rule moves a message out of undelivered."""
    from ledger.handover import record_sent
    from ledger.messages import apply_receipt, claim_batch
    from tests.ledger.test_ledger import SPEC

    launch = campaign_with_events_plain(engine, 3)
    (message, *_) = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(message.id, "P1")])
    apply_receipt(engine, SPEC.provider, "P1", Status.UNDELIVERED, "30003")
    tamper(
        engine,
        "INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status) "
        f"VALUES ('{SPEC.id}', {message.id}, '2026-12-01 00:00:00', 'receipt', "
        "'undelivered', 'delivered')",
    )
    tamper(engine, f"UPDATE messages SET status = 'delivered' WHERE id = {message.id}")
    seal_all(engine)
    problems = verify_log(engine).problems
    assert launch and any(
        f"of message {message.id}: moves it from undelivered to delivered, which no rule "
        "allows: made up or altered" in p
        for p in problems
    ), problems


def campaign_with_events_plain(engine, count: int) -> bool:
    from campaigns.recipients import ListRow
    from tests.helpers import record
    from tests.ledger.test_ledger import SPEC

    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(count)]
    record(engine, SPEC, rows)
    return True


def test_message_rows_added_behind_the_log_are_counted_against_the_launch(engine):
    from tests.ledger.test_ledger import SPEC

    campaign_with_events_plain(engine, 3)
    tamper(
        engine,
        "INSERT INTO messages (campaign_key, list_row, recipient, country, language, encoding, "
        "parts, batch, status, provider, attempts) SELECT campaign_key, 99, '+84912999999', "
        "country, language, encoding, parts, batch, 'delivered', provider, 1 FROM messages "
        "LIMIT 1",
    )
    problems = verify_log(engine).problems
    assert (
        f"campaign {SPEC.id}: 4 messages, its launch made 3: rows were added or deleted" in problems
    )


def test_parts_inflated_behind_the_log_are_named_and_both_ledgers_digest_alike(engine):
    from ledger.audit.rows import rows_digest
    from ledger.schema import campaigns
    from tests.ledger.test_ledger import SPEC

    campaign_with_events_plain(engine, 3)
    with engine.connect() as conn:
        key = conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == SPEC.id))
        ids = conn.execute(sa.text("SELECT id, carrier, parts FROM messages ORDER BY id")).all()
        digest = rows_digest(conn, key)
    by_hand = "\n".join(f"{i},{carrier or ''},{parts}" for i, carrier, parts in ids)
    assert digest == __import__("hashlib").sha256(by_hand.encode()).hexdigest()
    assert verify_log(engine).ok
    tamper(engine, "UPDATE messages SET parts = parts * 3")
    assert (
        f"campaign {SPEC.id}: its messages' carriers or parts are not those its launch "
        "recorded: rows were altered"
    ) in verify_log(engine).problems


def test_a_message_moved_to_another_provider_behind_the_log_is_named(engine):
    from ledger.messages import claim_batch
    from tests.ledger.test_ledger import SPEC

    campaign_with_events_plain(engine, 3)
    (first, *_) = claim_batch(engine, SPEC.id, 1)
    seal_all(engine)
    assert verify_log(engine).ok
    tamper(engine, f"UPDATE messages SET provider = 'viettel_direct' WHERE id = {first.id}")
    assert (
        f"message {first.id}: its row says provider viettel_direct, its claim sandbox: the row "
        "was altered"
    ) in verify_log(engine).problems


def test_an_error_code_changed_behind_the_log_is_named_and_every_honest_code_holds(engine):
    """A report's failures are counted by error code: blaming the recipients for what the
    carrier did (``UPDATE messages SET error_code = …``) is named. Every way a code is
    left honestly verifies first: a receipt's (undelivered keeps it, cut to 32
    characters; delivered has none), a worker's failure, a release's, a cancellation in
    bulk."""
    from ledger.handover import record_sent
    from ledger.messages import apply_receipt, cancel_campaign, claim_batch, record_outcome, release
    from tests.ledger.test_ledger import SPEC

    campaign_with_events_plain(engine, 7)
    claimed = claim_batch(engine, SPEC.id, 1)
    undelivered, delivered, failed, *rest = (m.id for m in claimed)
    record_sent(engine, SPEC.id, [(undelivered, "P1"), (delivered, "P2")])
    long_code = "E" * 40
    apply_receipt(engine, SPEC.provider, "P1", Status.UNDELIVERED, long_code)
    apply_receipt(engine, SPEC.provider, "P2", Status.DELIVERED, "000")
    record_outcome(engine, failed, Status.FAILED, "worker", code="invalid_number")
    release(engine, rest[:2], code="throttled")
    cancel_campaign(engine, SPEC.id)  # the released ones: cancelled in bulk
    seal_all(engine)
    verdict = verify_log(engine)
    assert verdict.ok, verdict.problems
    with engine.connect() as conn:
        codes = dict(conn.execute(sa.text("SELECT id, error_code FROM messages")).all())
    assert codes[undelivered] == long_code[:32] and codes[delivered] is None
    assert {codes[m] for m in rest[:2]} == {"campaign_cancelled"}

    tamper(engine, f"UPDATE messages SET error_code = 'invalid_number' WHERE id = {undelivered}")
    tamper(engine, f"UPDATE messages SET error_code = NULL WHERE id = {failed}")
    problems = verify_log(engine).problems
    assert (
        f"message {undelivered} (campaign {SPEC.id}): its row's error code is "
        f"invalid_number, its events say {long_code[:32]}: the row was altered"
    ) in problems
    assert (
        f"message {failed} (campaign {SPEC.id}): its row's error code is none, its events "
        "say invalid_number: the row was altered"
    ) in problems
    assert len(problems) == 2, problems


def test_a_checkpoint_row_of_a_made_up_tree_is_never_extended_by_the_next_signature(engine):
    """Whoever can insert a row into ``checkpoints`` with the peaks of a tree of their own
    (events rewritten outside the database) once had the next checkpoint signed over that
    tree, without the key. The next checkpoint goes on from the last one this key signed
    whose peaks lead to its root: the true tree."""
    first = checkpointed(engine)
    made_up = bytes([7]) * 32  # the peaks of a "tree" of the attacker's
    forged = notes.sign(ORIGIN, first.size, made_up, first_time(), OTHER_SEED)
    # Another key's note, no note at all, and the true note with peaks of another tree.
    for note in (forged.text, "x", first.text):
        with engine.begin() as conn:
            conn.execute(
                checkpoints.insert().values(
                    size=first.size, root=made_up.hex(), at=first_time(), note=note,
                    peaks=",".join([made_up.hex()] * first.size.bit_count()),
                )
            )  # fmt: skip
    campaign_with_events_again(engine)
    seal_all(engine)
    second = make_checkpoint(engine, ORIGIN, SEED)
    assert second.size > first.size
    assert second.root.hex() == independent_root(engine, second.size)


def first_time():
    from datetime import UTC, datetime

    return datetime(2026, 12, 1, tzinfo=UTC)


def test_sent_and_final_times_moved_behind_the_log_are_named(engine):
    """A report's first and last sends and its hours come from the rows' times: moved
    back five hours, they are named; the rows as the ledger left them hold."""
    from datetime import timedelta

    from ledger.handover import record_sent
    from ledger.messages import apply_receipt, claim_batch
    from ledger.schema import messages
    from tests.ledger.test_ledger import SPEC

    campaign_with_events_plain(engine, 3)
    first, second, _ = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(first.id, "P1"), (second.id, "P2")])
    apply_receipt(engine, SPEC.provider, "P2", Status.DELIVERED, None)
    seal_all(engine)
    assert verify_log(engine).ok, verify_log(engine).problems
    with engine.begin() as conn:
        times = dict(conn.execute(sa.select(messages.c.id, messages.c.sent_at)).all())
        conn.execute(
            messages.update()
            .where(messages.c.id == first.id)
            .values(sent_at=times[first.id] - timedelta(hours=5))
        )
        conn.execute(messages.update().where(messages.c.id == second.id).values(final_at=None))
    problems = verify_log(engine).problems
    assert len(problems) == 2, problems
    assert problems[0].startswith(
        f"message {first.id} (campaign {SPEC.id}): its row's sent time is "
    )
    assert problems[1].startswith(
        f"message {second.id} (campaign {SPEC.id}): its row's final time is none, its events say 20"
    )
