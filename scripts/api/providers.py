"""Providers: the list with each one's halt, and resuming a halted one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from scripts.api import problems
from scripts.api.common import Changer, Reader, Served
from scripts.api.problems import Problem

router = APIRouter(tags=["providers"])


class Provider(BaseModel):
    name: str
    type: str
    halted: str | None


@router.get("/v1/providers", response_model=list[Provider])
def providers(caller: Reader, runtime: Served) -> list[Provider]:
    """Every configured provider instance, its type, and why it is halted (``None``:
    it is not): a handful, as configured, so not paged."""
    from ledger.halts import all_halts

    halts = all_halts(runtime.engine)
    return [
        Provider(name=name, type=instance.type, halted=halts.get(name))
        for name, instance in sorted(runtime.settings.providers.items())
    ]


@router.post("/v1/providers/{name}/resume", responses=problems.described(403, 404, 409))
def resume_provider(name: str, caller: Changer, runtime: Served) -> dict[str, int]:
    """Lift a provider's halt; its campaigns' batches are queued again (``batches``)."""
    from ledger.summary import CampaignStateError
    from worker.campaign import control

    if name not in runtime.settings.providers:
        raise Problem(404, f"no provider {name!r}")
    try:
        return {"batches": control.resume_provider(runtime, name)}
    except CampaignStateError as exc:
        raise Problem(409, str(exc), "provider-state") from None
