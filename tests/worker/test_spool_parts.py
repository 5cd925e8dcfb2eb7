"""Messages the provider sent as several submissions (an SMPP long message: one id per
part), on their way to the ledger: a batch records every part's id with the send, and
when the ledger is away the spool keeps them and writes them back; a spool file an older
version wrote, without parts, still replays."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ledger.messages import claim_batch
from ledger.schema import message_parts, messages
from ledger.summary import status_counts
from providers import SendResult
from tests.worker.test_dispatch import SPEC, Recording, runtime_for, runtime_with_campaign
from worker.sending.spool import IN_DOUBT, Spool


def parts(engine) -> dict[int, list[str]]:
    """Every message's part ids, in part order."""
    query = sa.select(message_parts.c.message_id, message_parts.c.provider_message_id).order_by(
        message_parts.c.message_id, message_parts.c.part
    )
    found: dict[int, list[str]] = {}
    with engine.connect() as conn:
        for message_id, pid in conn.execute(query):
            found.setdefault(message_id, []).append(pid)
    return found


def statuses(engine) -> dict[int, tuple[str, str | None]]:
    query = sa.select(messages.c.id, messages.c.status, messages.c.provider_message_id)
    with engine.connect() as conn:
        return {m: (status, pid) for m, status, pid in conn.execute(query)}


def entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_parts_go_to_the_spool_and_back_to_the_ledger(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    one, two, whole = (m.id for m in claim_batch(engine, SPEC.id, 1)[:3])
    spool = Spool(tmp_path / "spool")
    written = spool.sent(
        SPEC.id,
        [(one, "A1"), (two, "B1"), (whole, "C1")],
        {one: ("A1", "A2", "A3"), two: ["B1", "B2"], whole: ("C1",)},
    )
    assert written is not None
    assert entries(written) == [
        {"op": "sent", "campaign": SPEC.id, "id": one, "pid": "A1", "parts": ["A1", "A2", "A3"]},
        {"op": "sent", "campaign": SPEC.id, "id": two, "pid": "B1", "parts": ["B1", "B2"]},
        {"op": "sent", "campaign": SPEC.id, "id": whole, "pid": "C1"},  # sent whole
    ]
    assert spool.replay(engine) == 3
    assert parts(engine) == {one: ["A1", "A2", "A3"], two: ["B1", "B2"]}
    found = statuses(engine)
    assert (found[one], found[whole]) == (("sent", "A1"), ("sent", "C1"))


def test_an_entry_written_before_parts_existed_still_replays(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    first = claim_batch(engine, SPEC.id, 1)[0].id
    spool = Spool(tmp_path / "spool")
    old = {"op": "sent", "campaign": SPEC.id, "id": first, "pid": "OLD1"}
    (spool._folder() / "results-1-old.jsonl").write_text(json.dumps(old) + "\n")
    assert spool.replay(engine) == 1
    assert spool.pending() == []
    assert statuses(engine)[first] == ("sent", "OLD1")
    assert parts(engine) == {}


@pytest.mark.parametrize("bad", ["A1,A2", ["A1", ""], None], ids=["text", "empty id", "null"])
def test_parts_a_batch_never_writes_put_the_message_in_doubt(engine, tmp_path, bad):
    """``parts`` must be a list of ids; anything else is not believed (``null`` is an
    entry without parts, as an older version wrote)."""
    runtime_with_campaign(engine, tmp_path)
    first = claim_batch(engine, SPEC.id, 1)[0].id
    spool = Spool(tmp_path / "spool")
    entry = {"op": "sent", "campaign": SPEC.id, "id": first, "pid": "A1", "parts": bad}
    (spool._folder() / "results-1-odd.jsonl").write_text(json.dumps(entry) + "\n")
    spool.replay(engine)
    if bad is None:
        assert statuses(engine)[first] == ("sent", "A1")
        return
    assert statuses(engine)[first] == ("unknown", None)  # never left for a resend
    with engine.connect() as conn:
        code = conn.scalar(sa.select(messages.c.error_code).where(messages.c.id == first))
    assert code == IN_DOUBT
    assert [p.suffix for p in (tmp_path / "spool").iterdir()] == [".bad"]
    assert parts(engine) == {}


class InParts(Recording):
    """A provider that sends every message of an even id as three submissions."""

    async def send(self, message):
        self.sent.append(message)
        pid = f"R{message.message_id}"
        if message.message_id % 2:
            return SendResult(provider_message_id=pid)
        return SendResult(provider_message_id=pid, parts=(pid, f"{pid}-2", f"{pid}-3"))


def _split(provider: InParts) -> dict[int, list[str]]:
    return {
        m.message_id: [f"R{m.message_id}", f"R{m.message_id}-2", f"R{m.message_id}-3"]
        for m in provider.sent
        if m.message_id % 2 == 0
    }


def test_a_batch_records_each_parts_id_with_the_send(engine, tmp_path):
    from worker.sending.dispatch import send_batch

    runtime_with_campaign(engine, tmp_path)
    provider = InParts()
    send_batch(runtime_for(engine, tmp_path, provider), SPEC.id, 1)
    assert len(provider.sent) == 20
    assert status_counts(engine, SPEC.id)["sent"] == 20
    assert parts(engine) == _split(provider)  # the odd ones went whole: no parts


def test_a_batch_whose_ledger_goes_away_spools_the_parts_too(engine, tmp_path):
    from worker.sending.dispatch import send_batch

    runtime_with_campaign(engine, tmp_path)
    provider = InParts()
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
    runtime._statement_engine = real
    assert parts(engine) == {}
    assert runtime.spool.replay(engine) == len(provider.sent)
    assert parts(engine) == _split(provider)
    assert _split(provider)  # some went in parts
