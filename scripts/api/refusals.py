"""The errors a caller can cause, as the problem each earns: the same words the CLI
prints for the same input (``scripts.output``), as a 4xx instead of exit 2.

Bad input (a campaign file, list, plan, provider, report or export the CLI would refuse)
is 422; an unknown campaign 404; a state that forbids the move 409; a ledger that went
away 503. Anything else is a bug: ``None``, answered 500 by ``scripts.api.problems``.
"""

from __future__ import annotations

from typing import Any

from scripts.api.problems import Problem


def _bad_input() -> tuple[type[BaseException], ...]:
    from campaigns.plan import PlanError
    from campaigns.recipients import ListError
    from campaigns.spec import SpecError
    from ledger.audit.export import ExportError
    from ledger.reports.campaign import ReportError
    from providers import ProviderConfigError

    return (SpecError, ListError, PlanError, ProviderConfigError, ReportError, ExportError)


#: The CLI's options a refusal may name, and the request's field that says the same.
_FIELDS = (
    ("--phone-column", "phone_column"),
    ("--encoding", "encoding"),
    ("--sheet", "sheet"),
    ("--ported", "ported"),
    ("--by", "by"),
    ("--even-if-expired", "even_if_expired"),
    ("--at", "at"),
)


def refusal(exc: BaseException, names: dict[str, str] | None = None) -> Problem | None:
    """The problem ``exc`` earns, ``None`` for a bug. ``names``: paths in the message to
    say as the caller named them (an upload's private path → the file's own name)."""
    from ledger.db import LedgerError
    from ledger.summary import CampaignNotFound, CampaignStateError

    def said(text: str) -> str:
        for path, name in (names or {}).items():
            text = text.replace(path, name)
        for flag, field in _FIELDS:  # the CLI's options, as the request's fields
            text = text.replace(flag, field)
        return text

    if isinstance(exc, Problem):  # a route's or a job's own answer
        return exc
    if isinstance(exc, _bad_input()):
        return Problem(422, said(str(exc)), "invalid-input")
    if isinstance(exc, CampaignNotFound):
        return Problem(404, f"no campaign {exc.args[0]!r}")
    if isinstance(exc, CampaignStateError):
        return Problem(409, str(exc), "campaign-state")
    if isinstance(exc, LedgerError):
        return Problem(503, str(exc), "ledger")
    return None


def as_problem(exc: BaseException, names: dict[str, str] | None = None) -> dict[str, Any]:
    """``exc`` as RFC 9457 details to keep (a failed job's ``problem``)."""
    from scripts.api.problems import BASE, TITLES

    found = refusal(exc, names) or Problem(
        500, "an error nobody expected; its cause is in the server's log"
    )
    return {
        "type": BASE + found.kind,
        "title": TITLES.get(found.status, "error"),
        "status": found.status,
        "detail": found.detail,
    }
