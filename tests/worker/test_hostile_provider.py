"""A hostile or broken provider against the whole sending path, on both ledgers: what it
answers is settled once, whatever it was, and never left ``sending`` for the reaper to
send again (found by an attacker: an eSMS-compatible server answering a ``CodeResult``
with a NUL and an escape got each message sent 111 times in 40 minutes)."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from aiohttp import web
from pydantic import SecretStr

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.lease import reap
from ledger.messages import claim_batch
from ledger.schema import messages
from ledger.summary import status_counts
from tests.helpers import record
from tests.providers.hostile import Hostile, drip, raw, web_app
from tests.worker.test_dispatch import SPEC
from worker.runtime import Runtime
from worker.sending.dispatch import send_batch
from worker.sending.spool import IN_DOUBT, Spool
from worker.settings import Settings

ROWS = 5
QUICK = {"connect_timeout": 1.0, "read_timeout": 2.0, "request_timeout": 1.0}


def campaign_on(engine, tmp_path, name: str, settings: dict[str, object]):
    """A campaign of ``ROWS`` messages on the provider instance ``name`` and a runtime
    whose settings configure it (created from them, as a worker does)."""
    spec = CampaignSpec.model_validate({**SPEC.model_dump(mode="json"), "provider": name})
    record(engine, spec, [ListRow(i + 2, f"09123{i:05d}", ()) for i in range(ROWS)])
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    providers = {"sandbox": {"type": "sandbox"}, name: settings}
    runtime = Runtime(Settings(database_url=url, var_dir=tmp_path, providers=providers), engine)
    return spec, runtime


def rows(engine) -> list[tuple[str, str | None, int]]:
    with engine.connect() as conn:
        query = sa.select(messages.c.status, messages.c.error_code, messages.c.attempts)
        return [tuple(row) for row in conn.execute(query.order_by(messages.c.id))]


def housekeeping(runtime: Runtime) -> int:
    """What the housekeeper does next: the spool written, then the reaper, with its lease
    run out at once and eSMS's key making a resend look safe. Returns what it requeued."""
    runtime.spool.replay(runtime.engine)
    reaped = reap(runtime.engine, timedelta(0), lambda _: True)
    return sum(reaped.requeued.values())


def test_a_code_result_the_ledger_could_not_store_settles_each_message_once(engine, tmp_path):
    async def hostile(request: web.Request, server: Hostile) -> web.StreamResponse:
        return web.json_response({"CodeResult": "\x1b[31mred\x00"})

    with web_app(hostile) as server:
        esms = {"type": "esms", "api_key": "k", "secret_key": "s", "base_url": server.url}
        spec, runtime = campaign_on(engine, tmp_path, "gateway", {**esms, **QUICK})
        send_batch(runtime, spec.id, 1)
        assert rows(engine) == [("failed", "\ufffd[31mred\ufffd", 1)] * ROWS
        assert housekeeping(runtime) == 0
        send_batch(runtime, spec.id, 1)  # a redelivered job finds nothing to send
        assert len(server.received) == ROWS  # each sent once
    assert rows(engine) == [("failed", "\ufffd[31mred\ufffd", 1)] * ROWS
    assert list((tmp_path / "spool").glob("*")) == []  # nothing spooled, nothing set aside


def test_a_send_cut_at_the_deadline_may_have_gone_out_and_is_never_resent(engine, tmp_path):
    """Twilio has no idempotency key: a send whose answer never came whole within the
    deadline ends ``unknown``; the reaper finds nothing left ``sending``."""
    last = b'Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{"sid":"SM123"}'
    with raw(drip(lines=600, every=0.2, last=last)) as server:
        twilio = {
            "type": "twilio",
            "account_sid": "AC" + "0" * 32,
            "auth_token": "fake-twilio-token-7f3a9c",
            "from_number": "+15005550006",
            "base_url": server.url,
        }
        spec, runtime = campaign_on(engine, tmp_path, "intl", {**twilio, **QUICK})
        send_batch(runtime, spec.id, 1)
        assert rows(engine) == [("unknown", "read_timeout", 1)] * ROWS
        assert housekeeping(runtime) == 0
        assert len(server.received) == ROWS


def refuse_poison(engine) -> None:
    """A rule of the ledger's own that refuses one provider id, standing for any value
    it refuses for good (not a connection lost: that waits for the next round)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.provider_message_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE UPDATE ON messages "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE UPDATE ON messages "
                "WHEN NEW.provider_message_id = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def test_a_spooled_result_the_ledger_refuses_settles_its_message_unknown(engine, tmp_path):
    """Such a file was set aside whole, its messages left ``sending``: the reaper queued
    them again every few seconds and the provider sent them again each time."""
    spec, runtime = campaign_on(engine, tmp_path, "sandbox", {"type": "sandbox"})
    claimed = [m.id for m in claim_batch(engine, spec.id, 1)]
    refuse_poison(engine)
    spool = Spool(tmp_path / "spool")
    spool.sent(spec.id, [(claimed[0], "P1"), (claimed[1], "poison"), (claimed[2], "P3")])
    spool.outcome(claimed[3], Status.FAILED, "108")
    entry = {"op": "sent", "campaign": spec.id, "id": claimed[4], "pid": ""}
    spool.write([entry])  # an empty id: nothing a receipt could ever match

    assert spool.replay(engine) == 5
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(messages.c.status, messages.c.provider_message_id, messages.c.error_code)
            .where(messages.c.id.in_(claimed))
            .order_by(messages.c.id)
        ).all()
    assert [tuple(row) for row in found] == [
        ("sent", "P1", None),
        ("unknown", None, IN_DOUBT),
        ("sent", "P3", None),
        ("failed", None, "108"),
        ("unknown", None, IN_DOUBT),
    ]
    # Kept for a person, and nothing left ``sending`` for the reaper to resend.
    assert len(list((tmp_path / "spool").glob("*.bad"))) == 2
    assert spool.pending() == []
    assert housekeeping(runtime) == 0
    assert status_counts(engine, spec.id)[Status.SENDING] == 0


def test_an_entry_without_a_message_id_sets_its_file_aside(engine, tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.write([{"op": "sent", "campaign": "c", "pid": "P1"}, json.loads('{"id": true}')])
    assert spool.replay(engine) == 0
    assert [p.suffix for p in (tmp_path / "spool").iterdir()] == [".bad"]
