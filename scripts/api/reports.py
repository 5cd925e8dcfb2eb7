"""Reports: a campaign's delivery report in the formats ``loa report`` writes (HTML for
phone and print, XLSX, CSV), made in a job and downloaded from it, streamed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from scripts.api import problems
from scripts.api.campaigns import summary_of
from scripts.api.common import Jobs, Reader, Served
from scripts.api.jobs import ACCEPTED, accepted
from scripts.api.runner import Running

router = APIRouter(tags=["reports"])


class ReportOrder(BaseModel):
    """What report to make."""

    format: Literal["html", "xlsx", "csv"] = "html"
    lang: Literal["vi", "en"] = Field(default="vi", description="the labels' language")
    by: str | None = Field(
        default=None, max_length=100, description="a list column to break down by (district)"
    )
    verify: bool = Field(
        default=False, description="verify the whole audit log first (as loa audit verify)"
    )


@router.post(
    "/v1/campaigns/{campaign_id}/reports",
    status_code=202,
    response_class=JSONResponse,
    responses={**ACCEPTED, **problems.described(404)},
)
def report(
    campaign_id: str,
    caller: Reader,
    runtime: Served,
    runner: Jobs,
    order: Annotated[ReportOrder | None, Body()] = None,
) -> JSONResponse:
    """Make the campaign's report (``loa report``): every recipient in exactly one final
    state, numbers masked, intake, parts, cost, the timeline, breakdowns, who launched
    and who paused. The job's result: its figures; its download: the file."""
    summary_of(runtime, campaign_id)  # 404 now, not in the job
    order = order or ReportOrder()

    def work(running: Running) -> dict[str, Any]:
        from campaigns.files import create_private
        from scripts.reports.command import LABELS, Format, write_campaign_report

        path = running.output(f"bao-cao-{campaign_id}.{order.format}")
        with create_private(path) as handle:
            data = write_campaign_report(
                runtime, campaign_id, order.by, Format(order.format), LABELS[order.lang],
                handle, order.verify,
            )  # fmt: skip
        running.tick(data.get("recipients", 0))
        return _json_safe(data)

    record, _ = runner.submit("report", caller.name, work, unit="recipients")
    return accepted(record)


def _json_safe(data: Any) -> Any:
    """The report's figures as JSON has them (keys as text, times as ISO 8601)."""
    import json

    return json.loads(json.dumps(data, default=str))
