"""Everything a campaign needs before its first row is read, shared by ``loa campaign
plan`` (a dry run) and ``loa campaign launch``: the campaign file, its providers and
routes, the list's header and encoding, the suppression lists, the advertising cap, the
ported numbers.

All of it is checked before any row is planned, so bad input fails fast and whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaigns.channels import TemplateChannel
from campaigns.phones import load_carrier_overrides
from campaigns.plan import PlanError, PlannedMessage, Planner, PlanSummary, RejectedRow
from campaigns.recipients import ListError, RecipientList, open_list
from campaigns.routing import Router
from campaigns.spec import CampaignSpec, Category, load_spec
from ledger.suppressions import capped_numbers, load
from providers import Provider, ProviderConfigError
from worker.runtime import Runtime

Decision = PlannedMessage | RejectedRow


@dataclass(frozen=True)
class ListOptions:
    """How to read a list: the operator's answers to what Loa cannot tell by itself."""

    phone_column: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    ported: Path | None = None

    def open(self, path: Path) -> RecipientList:
        return open_list(
            path, phone_column=self.phone_column, encoding=self.encoding, sheet=self.sheet
        )


@dataclass
class Prepared:
    spec: CampaignSpec
    recipients: RecipientList
    planner: Planner

    def decisions(self) -> Iterator[Decision]:
        return self.planner.plan(self.recipients.rows())

    @property
    def summary(self) -> PlanSummary:
        return self.planner.summary


def routes(runtime: Runtime, spec: CampaignSpec) -> Router:
    """The campaign's routes, knowing which countries each of its providers reaches.

    Raises:
        ProviderConfigError: a route names a provider that is not configured, or whose
            settings are invalid; the message names the campaign file's field.
    """
    reach = {}
    for where, name in spec.router().named():
        provider = _configured(runtime, where, name)
        if provider.sends != "text":
            raise PlanError(
                f"{where}: provider {name!r} sends {provider.sends}s, not SMS text: name it "
                'in a [[channels]] table of kind "template"'
            )
        reach[name] = provider.countries
    for channel in spec.channel_list:
        if isinstance(channel, TemplateChannel):
            where = f"channels.{channel.name}.provider"
            provider = _configured(runtime, where, channel.provider)
            if provider.sends != "template":
                raise PlanError(
                    f"{where}: provider {channel.provider!r} sends {provider.sends}, not "
                    "templates (name one whose type sends templates)"
                )
    return spec.router(reach)


def _configured(runtime: Runtime, where: str, name: str) -> Provider:
    """The provider instance ``name``, named in the campaign file at ``where``.

    Raises:
        ProviderConfigError: not configured, or its settings are invalid, naming ``where``.
    """
    try:
        return runtime.provider(name)
    except ProviderConfigError as exc:
        raise ProviderConfigError(f"{where}: {exc}", exc.instance or name, exc.problems) from None


def prepare(
    runtime: Runtime, spec: CampaignSpec | Path, recipients: Path, options: ListOptions
) -> Prepared:
    """Check every input and build the planner.

    Raises:
        SpecError, ListError, PlanError, ProviderConfigError: bad input, named.
        LedgerError: the ledger is unreachable or behind.
    """
    if isinstance(spec, Path):
        spec = load_spec(spec)
    router = routes(runtime, spec)  # an unknown or misconfigured provider fails now
    opened = options.open(recipients)
    carriers = None
    if options.ported is not None:
        try:
            carriers = load_carrier_overrides(options.ported)
        except ValueError as exc:
            raise ListError(str(exc)) from None
    runtime.ensure_schema()
    suppressed = load(runtime.engine, spec.suppression_lists)
    capped = None
    if spec.category is Category.ADVERTISING:
        capped = capped_numbers(runtime.engine, spec.category.value, runtime.settings.ad_daily_cap)
    try:
        planner = Planner(
            spec,
            opened.columns,
            suppressed=suppressed,
            capped=capped,
            carriers=carriers,
            router=router,
            # What each provider the routes name takes in one message: its type's limits,
            # or its instance's where settings change them (the header on each part of a
            # long message, the characters its coding carries).
            limits={name: runtime.provider(name).limits for _, name in router.named()},
        )
    except PlanError as exc:
        raise PlanError(f"{recipients}: {exc}") from None
    return Prepared(spec, opened, planner)


def plan_figures(prepared: Prepared, settings: Any, reach: float | None = None) -> dict[str, Any]:
    """What a plan says once its list is read (``loa campaign plan --json``, the API's
    plan job): the planner's counts, parts and cost, the list's encoding, and with
    several channels the channel plan (per channel; worst case; with ``reach``, the
    expected case; the daily quota of each template channel's provider)."""
    figures = prepared.summary.as_dict()
    figures.update(campaign=prepared.spec.id, encoding=prepared.recipients.encoding)
    goal = prepared.spec.goal
    if goal is not None:  # what its report will measure the campaign against
        from datetime import datetime

        from campaigns.hours import VIETNAM

        figures["goal"] = {
            "name": goal.name,
            "target": goal.target,
            "deadline": goal.deadline.isoformat(),
            "days_left": (goal.deadline - datetime.now(VIETNAM).date()).days,
            "areas": len(goal.areas),
            "population": goal.people,
        }
    if prepared.spec.channels is not None:
        from campaigns.channels import channel_plan

        quotas = {
            channel.provider: getattr(settings.providers[channel.provider], "daily_quota", None)
            for channel in prepared.spec.channel_list
            if getattr(channel, "provider", None) in settings.providers
        }
        figures["channels"] = channel_plan(
            prepared.spec.channel_list,
            prepared.summary.planned,
            prepared.summary.cost,
            prepared.summary.parts,
            reach,
            quotas,
        )
    return figures
