"""Zalo first, then SMS: a two-channel campaign through ``send_batch`` and the fallback
sweep on a real ledger (both backends), the providers doubled (the one thing tests may
fake; ``tests/scripts/test_channels_e2e.py`` runs the real fakes through ``loa worker``).

Each rule of ``ledger.channels.fallback`` is met by some recipients of one campaign, and
then every recipient is checked: at most one successful notification that could be
spared, none left unreached while a channel remains, and the log verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.channels.fallback import sweep
from ledger.messages import apply_receipt
from ledger.schema import messages, now
from providers import ErrorKind, SendError, SendResult
from tests.helpers import backdate, record
from tests.worker.test_dispatch import SPEC, Recording, runtime_for
from worker.sending.dispatch import send_batch

CHANNELS = [
    {
        "name": "zalo",
        "kind": "template",
        "provider": "zalo",
        "template": "231432",
        "params": {"ten": "{name}", "ma": "BZ-{code}"},
        "price": 300,
        "deliver_within": "30m",
    },
    {"kind": "text"},
]
TWO = CampaignSpec.model_validate(
    {**SPEC.model_dump(mode="json"), "id": "two-channels", "channels": CHANNELS}
)


class Zalo(Recording):
    """Takes every template; numbers ending 0-2 have no Zalo account (unreachable)."""

    name = "zalo"

    async def send(self, message):
        self.sent.append(message)
        if message.to[-1] in "012":
            raise SendError(ErrorKind.UNREACHABLE, "-118", "no Zalo account")
        return SendResult(f"zns-{message.message_id}")

    def classify(self, error):
        return error


def rows_of(engine, channel: int) -> dict[str, tuple[int, str, str | None]]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(
                messages.c.recipient, messages.c.id, messages.c.status, messages.c.error_code
            ).where(messages.c.channel == channel)
        )
        return {r.recipient: (r.id, r.status, r.error_code) for r in found}


@pytest.fixture
def scene(engine, tmp_path):
    rows = [ListRow(i + 2, f"09123{i:05d}", (f"Lan {i}", f"{i:03d}")) for i in range(20)]
    intake = record(engine, TWO, rows, columns=("name", "code"))
    zalo, sms = Zalo(), Recording()
    runtime = runtime_for(engine, tmp_path, sms)
    runtime._providers["zalo"] = zalo
    return runtime, intake, zalo, sms


def batches(intake, provider):
    return [batch for batch, name in intake.batches if name == provider]


def test_zalo_first_then_sms_for_those_it_cannot_reach_or_does_not_reach_in_time(engine, scene):
    runtime, intake, zalo, sms = scene
    assert {s for _, s, _ in rows_of(engine, 1).values()} == {Status.STANDBY.value}
    for batch in batches(intake, "sandbox"):  # the SMS jobs of the launch claim nothing
        send_batch(runtime, TWO.id, batch, "sandbox")
    assert sms.sent == []
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    first = zalo.sent[0]
    assert first.template.id == "231432"
    assert first.template.data == {"ten": "Lan 0", "ma": "BZ-000"}
    zalo_rows = rows_of(engine, 0)
    unreachable = {n for n, (_, s, _) in zalo_rows.items() if s == Status.UNREACHABLE}
    sent = {n for n, (_, s, _) in zalo_rows.items() if s == Status.SENT}
    assert len(unreachable) == 6 and len(sent) == 14

    # Zalo reports some delivered in time; the sweep spares their SMS and sends it to
    # those Zalo cannot reach, at once.
    on_time = sorted(sent)[:8]
    for number in on_time:
        apply_receipt(engine, "zalo", f"zns-{zalo_rows[number][0]}", Status.DELIVERED, None)
    swept = sweep(engine)
    assert swept.spared == 8 and sum(swept.queued.values()) == 6
    sms_rows = rows_of(engine, 1)
    assert {n for n, (_, s, _) in sms_rows.items() if s == Status.QUEUED} == unreachable
    assert {sms_rows[n][2] for n in unreachable} == {"fallback_unreachable"}
    assert {sms_rows[n][1] for n in on_time} == {Status.UNNEEDED.value}
    assert sweep(engine).decided == 0  # nothing twice

    # Half an hour on, the rest had no delivery: their SMS goes too (late); one Zalo
    # delivery then comes while its SMS still waits, and spares it after all.
    late = sent - set(on_time)
    backdate(engine, timedelta(minutes=31))  # half an hour on
    swept = sweep(engine)
    assert sum(swept.queued.values()) == len(late) == 6
    spared_late = sorted(late)[0]
    apply_receipt(engine, "zalo", f"zns-{zalo_rows[spared_late][0]}", Status.DELIVERED, None)
    assert sweep(engine).spared == 1
    for batch in batches(intake, "sandbox"):
        send_batch(runtime, TWO.id, batch, "sandbox")
    texted = {m.to for m in sms.sent}
    assert len(texted) == len(sms.sent) == 11  # 6 unreachable + 5 late, each once
    assert not texted & {f"+84{n[1:]}" for n in [*on_time, spared_late]}

    # Every recipient: one message that reached them or is on its way, never two.
    zalo_rows, sms_rows = rows_of(engine, 0), rows_of(engine, 1)
    for number in zalo_rows:
        zalo_status, sms_status = zalo_rows[number][1], sms_rows[number][1]
        assert (zalo_status == Status.DELIVERED) != (sms_status == Status.SENT), number

    # The money: 9 Zalo deliveries at 300 ₫; 11 SMS of one part; 9 SMS spared.
    from ledger.channels.outcomes import outcomes
    from ledger.summary import load_campaign

    planned = load_campaign(engine, TWO.id).intake["cost"]
    found = outcomes(engine, TWO.id, TWO, planned)
    assert found.reached == {"zalo": 9} and found.spared == 9
    assert found.template_spent == 9 * 300
    with engine.connect() as conn:
        texted_rows = conn.execute(
            sa.select(messages.c.carrier, messages.c.parts).where(
                messages.c.channel == 1, messages.c.status == "sent"
            )
        ).all()
    assert len(texted_rows) == 11
    sms_cost = sum(TWO.prices.per_part(carrier) * parts for carrier, parts in texted_rows)
    assert found.spent == round(9 * 300 + sms_cost, 2)
    assert found.saved == round(planned / 20 * 9 - 9 * 300, 2)


def test_the_log_of_a_two_channel_campaign_verifies(engine, scene):
    """Later channels start ``standby`` and move as the fallback rules say: the audit
    verify replays it all without a finding."""
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all

    runtime, intake, _, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    backdate(engine, timedelta(minutes=31))
    sweep(engine)
    seal_all(engine)
    verdict = verify_log(engine)
    assert verdict.ok, verdict.problems


def test_a_later_channel_made_to_start_queued_is_named(engine, scene):
    """A DBA queues a standing-by SMS behind the log's back: named."""
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all

    seal_all(engine)
    with engine.begin() as conn:
        conn.execute(
            messages.update()
            .where(messages.c.channel == 1, messages.c.id % 2 == 0)
            .values(status="queued")
        )
    verdict = verify_log(engine)
    assert not verdict.ok
    assert any("standby" in problem for problem in verdict.problems), verdict.problems


def test_cancel_reaches_the_messages_standing_by(engine, scene):
    from ledger.messages import cancel_campaign

    assert cancel_campaign(engine, TWO.id) == 40
    assert {s for _, s, _ in rows_of(engine, 1).values()} == {Status.CANCELLED.value}


def test_standing_by_past_validity_expires(engine, scene):
    from ledger.finaliser import finalise
    from ledger.schema import campaigns

    with engine.begin() as conn:
        conn.execute(campaigns.update().values(valid_until=now() - timedelta(minutes=1)))
    assert finalise(engine)["expired"] == 40
    assert {s for _, s, _ in rows_of(engine, 1).values()} == {Status.EXPIRED.value}


@pytest.mark.parametrize("fmt", ["html", "xlsx", "csv"])
def test_a_two_channel_campaign_reports_in_every_format(engine, scene, ledger_url, tmp_path, fmt):
    """Reports count a message per channel today (its per-recipient view is in
    ``loa campaign status``); they must not fail on its statuses."""
    import json

    from tests.scripts.test_cli import loa

    runtime, intake, _, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    sweep(engine)
    engine.dispose()
    path = tmp_path / f"two.{fmt}"
    run = loa("report", TWO.id, "-o", str(path), "--json", cwd=tmp_path,
              env={"LOA_DATABASE_URL": ledger_url})  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["statuses"]["unreachable"] == 6
    # Recipients are recipients; the statuses count a message per channel.
    assert (data["recipients"], data["all_channels"]) == (20, 40)
    found = data["channels"]  # per recipient: the breakdowns add up
    assert found["recipients"] == 20
    assert sum(found["reached"].values()) + sum(found["not_reached"].values()) == 20
    assert found["fell_back"] == {"unreachable": 6}
    if fmt == "html":
        page = path.read_text(encoding="utf-8")
        assert "Theo người nhận, qua các kênh" in page
        assert "Chuyển sang kênh sau: kênh trước không tới được" in page
    elif fmt == "xlsx":
        from openpyxl import load_workbook

        cells = [row[0] for row in load_workbook(path).worksheets[0].iter_rows(values_only=True)]
        assert "Theo người nhận, qua các kênh" in cells
    assert path.stat().st_size > 0


@pytest.mark.parametrize("when", ["next", "wait"])
def test_a_halted_channel_hands_those_waiting_to_the_next_or_keeps_them(engine, tmp_path, when):
    """The OA's quota is used up (a halt): with ``when_halted = "next"`` (the default)
    everyone still waiting on Zalo gets the SMS at once; with ``"wait"``, they wait for
    ``loa provider resume``."""
    from ledger.channels.outcomes import outcomes
    from ledger.halts import halt

    channels = [{**CHANNELS[0], "when_halted": when}, CHANNELS[1]]
    spec = CampaignSpec.model_validate(
        {**SPEC.model_dump(mode="json"), "id": f"halted-{when}", "channels": channels}
    )
    rows = [ListRow(i + 2, f"09123{i:05d}", (f"Lan {i}", f"{i:03d}")) for i in range(10)]
    record(engine, spec, rows, columns=("name", "code"))
    halt(engine, "zalo", "-144 the OA's daily ZNS quota is used up")
    swept = sweep(engine)
    zalo, sms = rows_of(engine, 0), rows_of(engine, 1)
    if when == "wait":
        assert swept.decided == 0
        assert {s for _, s, _ in sms.values()} == {Status.STANDBY.value}
        return
    assert swept.halted == 10 and sum(swept.queued.values()) == 10
    assert {(s, c) for _, s, c in zalo.values()} == {("cancelled", "channel_halted")}
    assert {(s, c) for _, s, c in sms.values()} == {("queued", "fallback_halted")}
    found = outcomes(engine, spec.id, spec, None)
    assert found.fell_back == {"halted": 10}
    assert sweep(engine).decided == 0
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all

    seal_all(engine)
    assert verify_log(engine).ok


def test_an_export_of_a_two_channel_campaign_verifies_alone(engine, scene, tmp_path):
    """The auditor's checker, in an isolated Python, knows where a later channel's
    message starts and that the launch made a message per recipient per channel."""
    import subprocess
    import sys

    from ledger.audit.checkpoints import public_of, verifier_key
    from ledger.audit.export import export

    runtime, intake, _, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    backdate(engine, timedelta(minutes=31))
    sweep(engine)
    for batch in batches(intake, "sandbox"):
        send_batch(runtime, TWO.id, batch, "sandbox")
    seed = bytes(range(1, 33))
    folder = tmp_path / "export"
    export(engine, folder, TWO.id, "loa/test", seed)
    checked = subprocess.run(
        [sys.executable, "-I", "-S", str(folder / "verify_export.py"),
         "--key", verifier_key("loa/test", public_of(seed))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_three_channels_an_early_delivery_spares_every_later_one(engine, tmp_path):
    """Zalo, a second OA, then SMS: reached by the first, the other two are spared (an
    ``unneeded`` message spares its next in turn): nothing stands by for ever."""
    second = {**CHANNELS[0], "name": "zalo2", "provider": "zalo2", "template": "99"}
    spec = CampaignSpec.model_validate(
        {
            **SPEC.model_dump(mode="json"),
            "id": "three",
            "channels": [CHANNELS[0], second, CHANNELS[1]],
        }
    )
    rows = [ListRow(i + 2, f"09123{i:05d}", (f"Lan {i}", f"{i:03d}")) for i in range(6)]
    intake = record(engine, spec, rows, columns=("name", "code"))
    zalo = Zalo()
    runtime = runtime_for(engine, tmp_path, Recording())
    runtime._providers["zalo"] = zalo
    for batch in batches(intake, "zalo"):
        send_batch(runtime, spec.id, batch, "zalo")
    for message in zalo.sent:
        if not message.to.endswith(("0", "1", "2")):
            apply_receipt(engine, "zalo", f"zns-{message.message_id}", Status.DELIVERED, None)
    sweep(engine)
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(messages.c.channel, messages.c.status, sa.func.count()).group_by(
                messages.c.channel, messages.c.status
            )
        ).all()
    found = {(channel, status): n for channel, status, n in left}
    delivered = found[(0, "delivered")]
    assert found[(1, "unneeded")] == found[(2, "unneeded")] == delivered > 0
    assert found[(1, "queued")] == 6 - delivered  # no Zalo: the second OA is tried next
    assert (2, "standby") in found and found[(2, "standby")] == 6 - delivered


def test_a_next_message_given_back_unsent_after_a_delivery_is_spared(engine, scene):
    """The SMS went late and a worker held it when Zalo's delivery came; the provider
    then refused it for now (given back): claimed again, it is spared, not sent."""
    from ledger.messages import claim_batch, release

    runtime, intake, zalo, sms = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    backdate(engine, timedelta(minutes=31))
    sweep(engine)  # every sent one falls back late
    (batch,) = batches(intake, "sandbox")
    held = claim_batch(engine, TWO.id, batch, "sandbox")
    first = next(m for m in zalo.sent if not m.to.endswith(("0", "1", "2")))
    apply_receipt(engine, "zalo", f"zns-{first.message_id}", Status.DELIVERED, None)
    assert sweep(engine).spared == 0  # held by a worker: nothing to spare now
    assert sweep(engine).decided == 0  # and nothing left to loop over
    release(engine, [m.id for m in held], "http_429", refund=True, claim=held[0].claim)
    send_batch(runtime, TWO.id, batch, "sandbox")
    assert first.to not in {m.to for m in sms.sent}
    assert len(sms.sent) == len(held) - 1
    assert rows_of(engine, 1)[first.to][1:] == (Status.UNNEEDED.value, "reached_before")
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all

    seal_all(engine)
    assert verify_log(engine).ok


def test_a_halted_zalo_never_goes_to_the_sms_routings_fallback(engine, tmp_path):
    """A halt hands an SMS provider's waiting messages to the campaign's routing fallback;
    a template channel's must not go there (they would go out as SMS, then their own SMS
    after them): their next channel goes instead."""
    from ledger.halts import halt

    routed = {**TWO.model_dump(mode="json"), "id": "routed", "routing": {"fallback": ["backup"]}}
    spec = CampaignSpec.model_validate(routed)
    rows = [ListRow(i + 2, f"09123{i:05d}", (f"Lan {i}", f"{i:03d}")) for i in range(5)]
    intake = record(engine, spec, rows, columns=("name", "code"))
    backup = Recording()
    backup.name = "backup"
    runtime = runtime_for(engine, tmp_path, Recording())
    runtime._providers["zalo"], runtime._providers["backup"] = Zalo(), backup
    halt(engine, "zalo", "-144 the OA's daily ZNS quota is used up")
    for batch in batches(intake, "zalo"):
        send_batch(runtime, spec.id, batch, "zalo")
    assert backup.sent == []
    assert {p for _, _, p in _providers(engine, 0)} == {"zalo"}
    assert sum(sweep(engine).queued.values()) == 5  # the SMS goes instead


def _providers(engine, channel: int) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(messages.c.id, messages.c.status, messages.c.provider).where(
                messages.c.channel == channel
            )
        ).all()


def test_a_delivery_for_a_send_whose_answer_was_lost_still_spares_the_sms(engine, scene):
    """The worker died between Zalo's answer and its record: the message is ``unknown``,
    its msg_id never known. Zalo's event echoes Loa's id (``tracking_id``): it finds the
    message, delivers it, and the SMS is spared (it was texted before this was found)."""
    from ledger.receipts import Inbound, digest, drain_all, store
    from ledger.schema import messages as table
    from providers.zalo import ZaloZnsConfig, ZaloZnsProvider

    assert scene  # a two-channel campaign, nothing sent yet
    with engine.begin() as conn:  # what the reaper leaves of a handed, unrecorded send
        first = conn.scalar(sa.select(sa.func.min(table.c.id)).where(table.c.channel == 0))
        conn.execute(table.update().where(table.c.id == first).values(status="unknown"))
    zalo = ZaloZnsProvider("zalo", ZaloZnsConfig(app_id="1", secret_key="s", refresh_token="r"))
    fields = {
        "event_name": "user_received_message",
        "message.msg_id": "never-recorded",
        "message.tracking_id": zalo.tracking_id(first),
    }
    receipt = zalo.parse_receipt(fields)
    store(engine, [Inbound("zalo", receipt.provider_message_id, receipt.status,
                           receipt.raw_status, None, None, digest("zalo", fields),
                           receipt.message_id)])  # fmt: skip
    assert drain_all(engine)["applied"] == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == first)).one()
    assert (row.status, row.provider_message_id) == ("delivered", "never-recorded")
    backdate(engine, timedelta(minutes=31))
    sweep(engine)
    assert rows_of(engine, 1)[row.recipient][1] == Status.UNNEEDED.value
    # Another provider's message cannot be reached by an echoed id.
    other = {
        **fields,
        "message.tracking_id": zalo.tracking_id(rows_of(engine, 1)[row.recipient][0]),
    }
    echoed = zalo.parse_receipt(other)
    store(engine, [Inbound("zalo", "another", echoed.status, echoed.raw_status, None, None,
                           digest("zalo", other), echoed.message_id)])  # fmt: skip
    assert drain_all(engine)["applied"] == 0


def test_status_says_the_sms_waits_for_zalo_not_that_nothing_is_left(engine, scene):
    """Zalo sent, nobody due yet: the campaign waits for the channel before (until the
    window ends), its SMS provider's row says so, and the per-recipient view adds up."""
    import time

    from rich.console import Console

    from ledger.summary import summarise
    from scripts.campaign_status import Reading, render
    from worker.campaign.waiting import explain

    runtime, intake, _, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    sweep(engine)  # the unreachable ones' SMS queued; the rest stand by
    for batch in batches(intake, "sandbox"):
        send_batch(runtime, TWO.id, batch, "sandbox")
    standing = explain(runtime, summarise(engine, TWO.id))
    waiting = standing.summary.waiting_for
    assert waiting is not None and waiting.reason == "fallback"
    assert waiting.messages == 14 and waiting.until is not None
    console = Console(width=160, record=True)
    console.print(render(Reading(standing, time.monotonic()), "two", console=console))
    shown = console.export_text()
    assert "kênh sau chờ kênh trước" in shown and "14 chờ kênh trước · standing by" in shown
    assert "Đã đến qua" not in shown  # nobody reached yet
    assert standing.channels.recipients == 20
    # 14 sent to Zalo, not one delivery reported: its events may not be reaching Loa.
    assert standing.channels.silent == ["zalo"]
    assert "Chưa có báo đến nào từ kênh zalo" in shown
    apply_receipt(engine, "zalo", "zns-" + str(min(standing_ids(engine))), Status.DELIVERED, None)
    assert explain(runtime, summarise(engine, TWO.id)).channels.silent == []


def standing_ids(engine) -> list[int]:
    """The Zalo messages sent and not yet reported on."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                sa.select(messages.c.id).where(messages.c.channel == 0, messages.c.status == "sent")
            )
        )


@pytest.mark.parametrize(
    ("forged", "named"),
    [
        # An extra SMS: queued "late" a minute after Zalo took it.
        ("fallback_late", "within its 0:30:00"),
        # Nobody reached: the SMS spared though Zalo never delivered.
        ("reached_before", "spared while the channel before left it sent"),
        # An SMS sent as if Zalo could not reach them, though it took the message.
        ("fallback_unreachable", "as if the channel before were unreachable; it was sent"),
    ],
)
def test_a_fallback_decision_nothing_justified_is_named(engine, scene, forged, named):
    """A DBA writes a decision the sweep never made, event and row together, and seals
    it: the log verifies every link, and still names it."""
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all
    from tests.ledger.test_audit_tamper import tamper

    runtime, intake, _, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    zalo_rows, sms_rows = rows_of(engine, 0), rows_of(engine, 1)
    number = next(n for n, (_, s, _) in zalo_rows.items() if s == "sent")
    sms_id = sms_rows[number][0]
    new = "unneeded" if forged == "reached_before" else "queued"
    tamper(
        engine,
        f"INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status, code)"
        f" VALUES ('{TWO.id}', {sms_id}, CURRENT_TIMESTAMP, 'fallback', 'standby', '{new}', "
        f"'{forged}')",
    )
    final = ", final_at = CURRENT_TIMESTAMP" if new == "unneeded" else ""
    tamper(engine, f"UPDATE messages SET status = '{new}', error_code = '{forged}'{final} "
                   f"WHERE id = {sms_id}")  # fmt: skip
    seal_all(engine)
    problems = verify_log(engine).problems
    assert any(named in p and f"message {sms_id}" in p for p in problems), problems


def test_a_decision_marked_made_while_its_sms_stands_by_is_named(engine, scene):
    """``fallback`` set to 1 on an open Zalo message: its SMS would stand by for ever."""
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all

    seal_all(engine)
    with engine.begin() as conn:
        first = conn.scalar(sa.select(sa.func.min(messages.c.id)).where(messages.c.channel == 0))
        conn.execute(messages.update().where(messages.c.id == first).values(fallback=1))
    problems = verify_log(engine).problems
    assert any(f"message {first}: its fallback is marked decided" in p for p in problems)


def test_the_list_and_the_daily_report_count_recipients_once(engine, scene, ledger_url, tmp_path):
    """Reached by any channel, a double once: never more reached than recipients."""
    import json

    from tests.scripts.test_cli import loa

    runtime, intake, zalo, _ = scene
    for batch in batches(intake, "zalo"):
        send_batch(runtime, TWO.id, batch, "zalo")
    backdate(engine, timedelta(minutes=31))
    sweep(engine)
    for batch in batches(intake, "sandbox"):
        send_batch(runtime, TWO.id, batch, "sandbox")
    for message in zalo.sent:  # every Zalo one delivered, late: 14 doubles
        apply_receipt(engine, "zalo", f"zns-{message.message_id}", Status.DELIVERED, None)
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    listed = json.loads(loa("campaign", "list", "--json", cwd=tmp_path, env=env).stdout)
    (line,) = [c for c in listed["campaigns"] if c["campaign"] == TWO.id]
    assert (line["recipients"], line["delivered"], line["share"]) == (20, 14, 0.7)
    run = loa("report", "--daily", "today", "-o", str(tmp_path / "d.html"), "--json",
              cwd=tmp_path, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    (day,) = [c for c in json.loads(run.stdout)["campaigns"] if c["campaign"] == TWO.id]
    assert (day["recipients"], day["reached"]) == (20, 14)
