"""The audit log: verify it whole (a job), its signed checkpoints, and exports an
auditor checks without trusting Loa or its database (a job; the download a zip of what
``loa audit export`` writes, with its stand-alone checker). An auditor may do all of it:
each writes only to the log itself (a verdict, a checkpoint, the export's own event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from scripts.api import problems
from scripts.api.campaigns import summary_of
from scripts.api.common import Jobs, Limit, Offset, Reader, Served
from scripts.api.jobs import ACCEPTED, accepted
from scripts.api.problems import Problem
from scripts.api.runner import Running
from worker.runtime import Runtime

router = APIRouter(tags=["audit"])


class CheckpointLine(BaseModel):
    """A signed checkpoint: the log's size (events) and Merkle root then (base64, as its
    note says it), and its note (the signed text, to hand to ``loa audit verify
    --checkpoint``)."""

    id: int
    size: int
    root: str
    at: datetime
    note: str


class CheckpointPage(BaseModel):
    checkpoints: list[CheckpointLine]
    verifier_key: str | None = Field(description="the key to check their signatures by")
    next: int | None


class ExportOrder(BaseModel):
    campaign: str = Field(min_length=1, max_length=200)
    since: str | None = Field(
        default=None, max_length=10_000, description="a checkpoint the auditor holds (its text)"
    )


def _seed(runtime: Runtime, what: str) -> bytes:
    seed = runtime.settings.signing_seed()
    if seed is None:
        raise Problem(409, f"LOA_AUDIT_SIGNING_KEY is not set: {what} must be signed",
                      "no-signing-key")  # fmt: skip
    return seed


@router.post("/v1/audit/verify", status_code=202, response_class=JSONResponse, responses=ACCEPTED)
def verify(caller: Reader, runtime: Served, runner: Jobs) -> JSONResponse:
    """Seal what is pending, then verify the whole log (``loa audit verify``): the chain,
    the Merkle tree, every checkpoint and each message's row against its events. The
    verdict is recorded and is the job's result (``ok``, ``broken``, ``problems``)."""

    def work(running: Running) -> dict[str, Any]:
        from ledger.audit.verify import verify_log
        from ledger.chain import record_verdict, seal_all

        seal_all(runtime.engine)
        verdict = verify_log(runtime.engine, runtime.settings.audit_key())
        record_verdict(runtime.engine, verdict)
        running.tick(verdict.sealed)  # the events checked
        return verdict.as_dict()

    record, _ = runner.submit("verify", caller.name, work, key="verify", unit="events")
    return accepted(record)


@router.get("/v1/audit/checkpoints", response_model=CheckpointPage)
def checkpoints(
    caller: Reader, runtime: Served, limit: Limit = 50, offset: Offset = 0
) -> CheckpointPage:
    """Signed checkpoints, newest first."""
    import sqlalchemy as sa

    from ledger.schema import checkpoints as table

    query = sa.select(table.c.id, table.c.size, table.c.root, table.c.at, table.c.note)
    with runtime.engine.connect() as conn:
        rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit + 1).offset(offset)).all()
    return CheckpointPage(
        checkpoints=[_line(row) for row in rows[:limit]],
        verifier_key=_verifier_key(runtime),
        next=offset + limit if len(rows) > limit else None,
    )


def _verifier_key(runtime: Runtime) -> str | None:
    from ledger.audit.checkpoints import public_of, verifier_key

    seed = runtime.settings.signing_seed()
    return verifier_key(runtime.settings.audit_log_name, public_of(seed)) if seed else None


@router.post(
    "/v1/audit/checkpoints",
    response_model=CheckpointLine,
    status_code=201,
    responses=problems.described(409),
)
def checkpoint(caller: Reader, runtime: Served) -> CheckpointLine:
    """Seal what is pending and sign a checkpoint of the whole log now (409 without
    LOA_AUDIT_SIGNING_KEY, or when the log is broken: nothing is signed over it)."""
    import sqlalchemy as sa

    from ledger.audit.log import LogBroken, make_checkpoint
    from ledger.chain import seal_all
    from ledger.schema import checkpoints as table

    seed = _seed(runtime, "a checkpoint")
    seal_all(runtime.engine)
    try:
        signed = make_checkpoint(runtime.engine, runtime.settings.audit_log_name, seed)
    except LogBroken as exc:
        raise Problem(409, f"the audit log is broken: {exc}", "log-broken") from None
    query = sa.select(table.c.id, table.c.size, table.c.root, table.c.at, table.c.note)
    with runtime.engine.connect() as conn:
        row = conn.execute(
            query.where(table.c.root == signed.root.hex(), table.c.size == signed.size)
            .order_by(table.c.id.desc())
            .limit(1)
        ).one()
    return _line(row)


def _line(row: Any) -> CheckpointLine:
    from ledger.audit.export import base64_of

    return CheckpointLine(**{**row._asdict(), "root": base64_of(bytes.fromhex(row.root))})


@router.post(
    "/v1/audit/exports",
    status_code=202,
    response_class=JSONResponse,
    responses={**ACCEPTED, **problems.described(404, 409)},
)
def export(order: ExportOrder, caller: Reader, runtime: Served, runner: Jobs) -> JSONResponse:
    """Export a campaign for an auditor (``loa audit export``): its events with their
    proofs, a checkpoint signed now, each recipient's final state (masked) and
    ``verify_export.py``. The job's download: a zip of the folder; its result, the
    manifest. 409 without LOA_AUDIT_SIGNING_KEY; 422 for a ``since`` that is no
    checkpoint of this log."""
    from ledger.audit.checkpoints import CheckpointError, parse

    seed = _seed(runtime, "an export")
    summary_of(runtime, order.campaign)
    held = None
    if order.since is not None:
        try:
            held = parse(order.since)
        except CheckpointError as exc:
            raise Problem(422, f"since: {exc}", "invalid-input") from None

    def work(running: Running) -> dict[str, Any]:
        import shutil

        from ledger.audit.export import export as write_export

        folder = running.folder / f"kiem-toan-{order.campaign}"
        manifest = write_export(runtime.engine, folder, order.campaign,
                                runtime.settings.audit_log_name, seed, held)  # fmt: skip
        archive = running.output(f"{folder.name}.zip")
        shutil.make_archive(str(archive.with_suffix("")), "zip", running.folder, folder.name)
        archive.chmod(0o600)
        shutil.rmtree(folder)
        running.tick(int(manifest.get("events", 0)))
        return manifest

    record, _ = runner.submit("export", caller.name, work, unit="events")
    return accepted(record)
