"""The ledger's tables (SQLAlchemy Core). Migrations in ``ledger/migrations`` create them;
this module is what the code reads and writes through, and the two must agree (a test
checks that a migrated database matches this metadata).

- ``campaigns``: one row per launched campaign, with its validated spec and intake counts;
  its public ``id`` is the campaign file's, its ``key`` a small integer for the other rows.
- ``messages``: one row per recipient per campaign (unique on the pair): status, attempts,
  provider, the provider's message id, the last error code, timestamps.
- ``rejects``: one row per list row that produced no message, with its reason.
- ``events``: append-only, one row per status change, with its source.
- ``seals``: the hash chain over the events, for auditors (``ledger.chain``).
- ``message_parts``: the parts of a message sent as several submissions, each
  with its own provider id and receipt status (``ledger.parts``).
- ``inbound_messages``: messages handsets sent us (``ledger.inbound``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL; INTEGER on SQLite, where only that type autoincrements.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


campaigns = sa.Table(
    "campaigns",
    metadata,
    # A small integer for the rows that point here: a million-row campaign repeats it in
    # every message and in two indexes, where the 64-character id would triple their size.
    sa.Column("key", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("brandname", sa.String(11), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("list_name", sa.String(255), nullable=False),
    # Headers of the list's columns other than the phone: the keys of messages.fields.
    sa.Column("list_columns", sa.JSON, nullable=False),
    sa.Column("intake", sa.JSON, nullable=False),
    # Operator-set state (running, halted …). Completion is derived from the messages.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("state_reason", sa.Text, nullable=True),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("valid_until", UtcDateTime, nullable=False),
    # Launched with `--at`: the campaign is `scheduled` until then (`loa scheduler`).
    sa.Column("start_at", UtcDateTime, nullable=True),
)

#: A message whose number retention replaced by its keyed HMAC (``ledger.retention.PREFIX``
#: ``h:``): the predicate of the partial index ``ix_messages_retained``. A query uses that
#: index only when it says this, as a literal (``ledger.history``), not a bound parameter.
RETAINED = "recipient LIKE 'h:%'"

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("campaign_key", sa.Integer, sa.ForeignKey("campaigns.key"), nullable=False),
    sa.Column("recipient", sa.String(20), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("carrier", sa.String(20), nullable=True),
    sa.Column("list_row", sa.Integer, nullable=False),
    sa.Column("language", sa.String(3), nullable=False),
    sa.Column("encoding", sa.String(5), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provider", sa.String(32), nullable=False),
    # The list's other cells (campaigns.list_columns order), as a JSON array: templates
    # render from them at send time and reports group by them.
    sa.Column("fields", sa.JSON, nullable=True),
    sa.Column("provider_message_id", sa.String(64), nullable=True),
    sa.Column("error_code", sa.String(32), nullable=True),
    # Who holds the row while it is `sending`, and since when (for the reaper's lease).
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("claimed_at", UtcDateTime, nullable=True),
    # Set just before the provider is called: after a crash, a claimed row without it was
    # never handed over (safe to send again), one with it may have gone out (unknown).
    sa.Column("handed_at", UtcDateTime, nullable=True),
    # Created with its campaign (campaigns.created_at); updated_at is the last change.
    sa.Column("updated_at", UtcDateTime, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("final_at", UtcDateTime, nullable=True),
    # A message's own validity, when shorter than its campaign's (a welcome: 12 h from
    # the arrival, in a month-long arrivals campaign).
    sa.Column("valid_until", UtcDateTime, nullable=True),
    # Which of the campaign's channels (its ``channels``, in order; 0 for a campaign with
    # SMS alone): one message per recipient per channel.
    sa.Column("channel", sa.SmallInteger, nullable=False, server_default="0"),
    # For a message with a next channel: whether that one's fate is decided
    # (``ledger.channels.fallback``): 0 not yet, 2 sent it on time and watching for a
    # late delivery that may still spare it, 1 settled; NULL without a next channel.
    sa.Column("fallback", sa.SmallInteger, nullable=True),
    # Few indexes on purpose: each one costs on every row of a million-row launch.
    sa.UniqueConstraint("campaign_key", "recipient", "channel"),
    sa.Index(None, "campaign_key", "batch", "status"),
    sa.Index(
        "ix_messages_provider_message",
        "provider",
        "provider_message_id",
        sqlite_where=sa.text("provider_message_id IS NOT NULL"),
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    ),
    # Only the rows in flight: the reaper looks for abandoned claims every few seconds,
    # and must not read a ledger of millions to find the few hundred being sent.
    sa.Index(
        "ix_messages_sending",
        "claimed_at",
        sqlite_where=sa.text("status = 'sending'"),
        postgresql_where=sa.text("status = 'sending'"),
    ),
    # Only the messages whose next channel is undecided, by what decides it (their
    # status, open or watching, and for a sent one, when): the fallback sweep reads the
    # few that are due, never the campaign.
    sa.Index(
        "ix_messages_fallback",
        "campaign_key",
        "channel",
        "status",
        "fallback",
        "sent_at",
        sqlite_where=sa.text("fallback IN (0, 2)"),
        postgresql_where=sa.text("fallback IN (0, 2)"),
    ),
    # Only the messages whose number retention replaced (``RETAINED``): a number's
    # history asks each campaign whether it holds any (``ledger.history``), and must not
    # read every message of the ledger to learn that none does.
    sa.Index(
        "ix_messages_retained",
        "campaign_key",
        sqlite_where=sa.text(RETAINED),
        postgresql_where=sa.text(RETAINED),
    ),
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("campaign_key", sa.Integer, sa.ForeignKey("campaigns.key"), nullable=False),
    sa.Column("list_row", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Index(None, "campaign_key", "reason"),
)

#: Numbers that must not be texted: opt-outs (a refusal, honoured for every campaign) and
#: the Do-Not-Call register (advertising). Checked at planning.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("list", sa.String(16), primary_key=True),
    sa.Column("number", sa.String(20), primary_key=True),
    sa.Column("added_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(255), nullable=True),
)

#: Providers stopped by a halt-class error (bad credentials, no balance …): their queue
#: takes no work until an operator resumes them (`loa provider resume NAME`).
provider_halts = sa.Table(
    "provider_halts",
    metadata,
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(64), nullable=False),
    sa.Column("message_id", BigId, nullable=True),
    sa.Column("at", UtcDateTime, nullable=False),
    # worker, receipt, planner, finaliser, operator
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("from_status", sa.String(12), nullable=True),
    sa.Column("to_status", sa.String(12), nullable=True),
    # The provider's own code or raw status, as received.
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Index(None, "campaign_id", "id"),
    sa.Index(None, "message_id"),
)


#: The tamper-evident chain over ``events`` (``ledger.chain``): one row per sealed event,
#: in the order sealed, with its link. Append-only like ``events`` (PostgreSQL refuses
#: UPDATE, DELETE and TRUNCATE on both: migration 0002).
seals = sa.Table(
    "seals",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=False),
    sa.Column("event_id", BigId, nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("sealed_at", UtcDateTime, nullable=False),
)


#: Each whole-chain verification (``loa audit verify``, the housekeeper's daily one), so a
#: report can say when the log was last proven intact without recomputing millions of
#: links while someone waits. Append-only on PostgreSQL, like the chain.
verifications = sa.Table(
    "verifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("sealed", sa.BigInteger, nullable=False),  # links that held
    sa.Column("head", sa.String(64), nullable=False),  # the last link that held
    sa.Column("broken", sa.JSON, nullable=True),  # the first that did not
    # The Merkle root of the ``sealed`` events that held (``ledger.audit.merkle``): a later
    # verify checks the tree of that size still has it (None: recorded before the tree).
    sa.Column("root", sa.String(64), nullable=True),
)

#: Signed checkpoints of the log (``ledger.audit.checkpoints``): its size and Merkle root
#: at a moment, signed with the ledger's Ed25519 key. Every one must stay consistent with
#: the tree as it grows; ``peaks`` (the roots of its perfect subtrees, hex, comma-separated)
#: let the next checkpoint hash only the events sealed since.
checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("peaks", sa.Text, nullable=False),
)

#: Arrival events already taken (``ledger.arrivals``): a replayed file or POST finds its
#: event ids here and welcomes nobody twice. Pruned after the dedupe window.
arrival_events = sa.Table(
    "arrival_events",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
)

#: When each visitor was last welcomed: one welcome per visitor per N days, decided by one
#: conditional upsert, so every machine ingesting arrivals agrees, and memory stays flat
#: however many visitors the window holds.
visitors = sa.Table(
    "visitors",
    metadata,
    sa.Column("recipient", sa.String(20), primary_key=True),
    sa.Column("welcomed_at", UtcDateTime, nullable=False),
)

#: Delivery receipts as the webhook accepted them (``ledger.receipts``): durable before
#: the provider gets its 2xx, applied to their messages by a drainer. ``digest`` makes a
#: replayed receipt one row; ``state``: pending, waiting (no message with that id yet),
#: applied, ignored (no forward move), unmatched (never found), flagged (unknown status).
receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_message_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(12), nullable=True),
    sa.Column("raw_status", sa.String(64), nullable=False),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("network", sa.String(20), nullable=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=True),
    #: When a receipt waiting for its message was last tried (``ledger.receipts``).
    sa.Column("tried_at", UtcDateTime, nullable=True),
    #: Loa's own id of the message, when the provider echoes it (``Receipt.message_id``).
    sa.Column("message_id", sa.BigInteger, nullable=True),
    sa.Index(None, "state", "id"),
    # The waiting ones, least recently tried first: a few that can never match must not
    # stand in front of the rest for a day.
    sa.Index(
        "ix_receipts_waiting",
        "tried_at",
        sqlite_where=sa.text("state = 'waiting'"),
        postgresql_where=sa.text("state = 'waiting'"),
    ),
)


#: The parts of a message the provider took as several submissions (a long text submitted
#: part by part), each with its own id and its own receipt; written with the send
#: (``ledger.handover.record_sent``), only for messages of more than one part. A part's
#: ``status`` is its final receipt's (``None`` until one came); the message's own status
#: follows from all of them (``ledger.parts``).
message_parts = sa.Table(
    "message_parts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", BigId, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("part", sa.SmallInteger, nullable=False),  # 1-based, in the text's order
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_message_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(12), nullable=True),
    sa.Column("raw_status", sa.String(64), nullable=True),
    sa.Column("code", sa.String(32), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("message_id", "part"),
    # Not unique: an SMSC that repeats an id must not fail the record of a whole group of
    # sends (the receipt then goes to the newest part with that id: ``ledger.parts``).
    sa.Index(None, "provider", "provider_message_id"),
)

#: Messages handsets sent to our numbers (mobile-originated, arriving on a provider's bind),
#: stored before the provider acknowledges them. ``source`` is the handset's number:
#: personal data, deleted after the retention period (``ledger.retention``). ``digest``
#: makes a message the SMSC sends again (our answer was lost) one row.
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("destination", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
)


#: Credentials a provider issues for a while (an OA's access token and its single-use
#: refresh token: ``providers.tokens``), one row per provider instance, shared by every
#: process; renewed under the row's lock (``ledger.channels.tokens``). ``seed`` is the
#: sha256 of the refresh token the settings held when the row began; ``refused_at``, when
#: the provider refused the stored refresh token: only then do new settings start it again.
provider_tokens = sa.Table(
    "provider_tokens",
    metadata,
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("seed", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("refused_at", UtcDateTime, nullable=True),
)


#: Accounts of the HTTP API (``ledger.api.accounts``): a role and an argon2id password hash.
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("disabled_at", UtcDateTime, nullable=True),
)

#: API tokens (``ledger.api.accounts``): only each one's SHA-256 is kept; shown once.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(64), sa.ForeignKey("users.name"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(100), nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)


#: Long work the HTTP API runs for a caller (``ledger.api.jobs``): a plan or launch of a
#: list, a report, a verification, an export. ``key``: what makes two the same (a launch
#: of one campaign id), unique among those not finished; ``heartbeat``: the runner's last
#: sign of life (a running job whose runner went silent is ``interrupted``).
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("unit", sa.String(16), nullable=False, server_default="rows"),
    sa.Column("runner", sa.String(120), nullable=False, server_default=""),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("problem", sa.JSON, nullable=True),
    sa.Column("file", sa.Text, nullable=True),
    sa.Index(
        "ix_jobs_open_key",
        "key",
        unique=True,
        sqlite_where=sa.text("state IN ('queued', 'running')"),
        postgresql_where=sa.text("state IN ('queued', 'running')"),
    ),
    sa.Index(None, "account", "created_at"),
)


#: Outcomes a goal is measured by (``ledger.goals.outcomes``, issue #24): per area and
#: day, how many acted (installs the app's backend published), one row per area and day:
#: importing a day again replaces it. ``area`` folded (``campaigns.goals.fold``).
outcome_counts = sa.Table(
    "outcome_counts",
    metadata,
    sa.Column("goal", sa.String(200), primary_key=True),
    sa.Column("area", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
)

#: The numbers that acted, as the keyed HMAC retention gives a number
#: (``ledger.retention.pseudonym``), never the number: matched against recipients (whose
#: own numbers become the same HMAC when retention runs). The first day each acted.
outcome_acts = sa.Table(
    "outcome_acts",
    metadata,
    sa.Column("goal", sa.String(200), primary_key=True),
    sa.Column("who", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
)


#: A goal campaign's recipients as the keyed HMAC of their numbers (the same as
#: ``outcome_acts.who``), written at launch when the retention key is set
#: (``ledger.goals.pseudonyms``): the goal section matches them to the numbers that
#: acted with a join, never an HMAC per recipient per report. One per list row.
recipient_pseudonyms = sa.Table(
    "recipient_pseudonyms",
    metadata,
    # No foreign key: written once, in the launch's transaction, beside its campaign's
    # row; the key's check per row cost a launch of a million 4 s of its 7.
    sa.Column("campaign_key", sa.Integer, primary_key=True),
    sa.Column("list_row", sa.Integer, primary_key=True),
    sa.Column("who", sa.String(64), nullable=False),
)


#: The key a goal's numbers that acted were kept under (``ledger.retention.fingerprint``
#: of ``LOA_RETENTION_KEY``, never the key): numbers under two keys never meet, so an
#: import under another key is refused and a report says it cannot match them.
goal_keys = sa.Table(
    "goal_keys",
    metadata,
    sa.Column("goal", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
)


def list_cell(conn: Connection, index: int) -> Any:
    """The list cell at ``index`` of each message's stored cells (``messages.fields``, a
    JSON array), as SQL (NULL for a JSON null): what reports break down by, retention
    clears and a goal's areas are read from."""
    if conn.dialect.name == "postgresql":
        return sa.cast(messages.c.fields, sa.dialects.postgresql.JSONB)[index].astext
    return sa.func.json_extract(messages.c.fields, f"$[{index}]")


def key_of(campaign_id: str) -> sa.ScalarSelect[int]:
    """The campaign's integer key, as a subquery usable in any WHERE."""
    return sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id).scalar_subquery()


def now() -> datetime:
    """The ledger's clock: UTC, aware."""
    return datetime.now(UTC)
