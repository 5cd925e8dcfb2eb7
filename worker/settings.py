"""Loa's settings, read from the environment (prefix ``LOA_``, nesting with ``__``).

With nothing set, Loa runs embedded: a SQLite ledger under ``./var/``, dramatiq's
in-memory broker with worker threads in the same process, and one ``sandbox`` provider.
Production sets ``LOA_DATABASE_URL`` (PostgreSQL) and ``LOA_REDIS_URL``.

Provider instances are named; each has a ``type`` and the fields that type's module
declares (credentials there are ``SecretStr``)::

    LOA_PROVIDERS__SANDBOX__TYPE=sandbox
    LOA_PROVIDERS__SANDBOX__LATENCY_MS=250
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from campaigns.secrets import GuardingSecret

#: Provider instance names become dramatiq queue names (``sms.<name>``), so they must be
#: valid queue names; lower case keeps environment variables and campaign files agreeing.
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class SettingsError(ValueError):
    """A setting found unusable after the settings were read (the message names it)."""


class ProviderInstance(BaseModel):
    """One configured provider: its type and that type's own fields (validated later by
    the provider module, which knows which of them are secrets)."""

    model_config = ConfigDict(extra="allow")

    #: Defaults to the instance's name, so ``LOA_PROVIDERS__SANDBOX__LATENCY_MS=250``
    #: alone configures an instance ``sandbox`` of type ``sandbox``.
    type: str | None = None


def _default_providers() -> dict[str, ProviderInstance]:
    return {"sandbox": ProviderInstance(type="sandbox")}


class Settings(BaseSettings):
    """Every setting Loa reads. Nested models are plain ``BaseModel`` on purpose:
    pydantic-settings only fills nested ``BaseSettings`` from their own prefix."""

    model_config = SettingsConfigDict(
        env_prefix="LOA_",
        env_nested_delimiter="__",
        env_nested_max_split=2,
        extra="ignore",
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger. Unset: a SQLite file under var_dir.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for queues. Unset: dramatiq's in-memory broker, in one process.",
    )
    redis_namespace: str = Field(
        default="loa",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Prefix of every Redis key Loa's queues use: letters, digits, '.', "
        "'_', '-' (a glob character would make Loa's own key scans miss or overreach).",
    )
    redis_heartbeat_timeout_ms: int = Field(
        default=15_000,
        ge=1_000,
        description="A worker silent this long is dead: its unacknowledged jobs go back "
        "(a live worker polls every second; the housekeeper looks every 5 s).",
    )
    redis_maintenance_chance: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Redis commands per million that look for dead workers (dramatiq: 1,000, "
        "which can leave a quiet queue's jobs stranded for hours).",
    )
    metrics_port: int = Field(
        default=9191,
        ge=0,
        le=65535,
        description="Where `loa worker` serves Prometheus metrics (0: no metrics server).",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="The address the metrics listen on (loopback: give another on purpose).",
    )
    webhook_metrics_port: int = Field(
        default=9192,
        ge=0,
        le=65535,
        description="Where `loa webhook` serves its Prometheus metrics, on LOA_METRICS_HOST "
        "(0: none); never on the public receipts port.",
    )
    webhook_request_seconds: float = Field(
        default=15.0,
        ge=1,
        le=300,
        description="`loa webhook`: a request's headers and body must arrive within this "
        "long, or its connection is closed (slow clients hold no connection for long).",
    )
    webhook_max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="`loa webhook`: open connections per process at most; one more is closed "
        "at once, and requests beyond it are answered 503.",
    )
    var_dir: Path = Field(default=Path("var"), description="Where embedded files live.")
    api_max_upload: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        le=16 * 1024**3,
        description="`loa api`: bytes at most in one upload (a campaign file and its list); "
        "a larger one is answered 413 before it is read whole.",
    )
    api_jobs: int = Field(
        default=2,
        ge=1,
        le=32,
        description="`loa api`: jobs (plans, launches, reports, verifications, exports) run "
        "at once per process; more wait their turn, queued.",
    )
    arrivals_rules: Path | None = Field(
        default=None,
        description="The arrivals rules file `POST /arrivals` on `loa webhook` uses "
        "(unset: that route answers 404).",
    )
    arrivals_api_key: GuardingSecret | None = Field(
        default=None,
        description="The key `POST /arrivals` callers send in `X-Api-Key` (16 characters or "
        "more, hard to guess: `openssl rand -hex 24`).",
    )
    arrivals_max_batch: int = Field(
        default=1000, ge=1, le=10_000, description="Events at most in one `POST /arrivals`."
    )
    batch_size: int = Field(default=200, ge=1, le=5000, description="Recipients per job.")
    worker_threads: int = Field(default=8, ge=1, le=256)
    send_concurrency: int = Field(
        default=32,
        ge=1,
        le=512,
        description="Messages in flight at once to one provider from one worker process "
        "(a provider answering in 250 ms needs 125 for 500 msg/s).",
    )
    rate_headroom: float = Field(
        default=0.05,
        ge=0,
        le=0.5,
        description="Fraction below each provider's agreed rate that Loa aims for: the "
        "carrier counts arrivals, and a message's way there (Loa's loop, a busy machine, "
        "the network) varies by tens of milliseconds, which could push a one-second window "
        "over rate + burst (5 %: 50 ms of such jitter absorbed; measured on a loaded "
        "two-core machine, 36 ms).",
    )
    immediate_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Quick retries (within seconds, in the job) of a message the provider "
        "refused for now, before it is given back for a later attempt.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Send attempts per message on retryable errors."
    )
    sending_lease_seconds: int = Field(
        default=900,
        ge=5,
        le=7 * 86400,
        description="After this long in `sending` a message is settled by the reaper: "
        "must exceed the longest batch at the provider's rate.",
    )
    orphan_after_seconds: int = Field(
        default=60,
        ge=2,
        le=86400,
        description="Queued messages of a running campaign left alone this long, whose batch "
        "has no job in Redis (Redis restarted without its data, an enqueue lost in an "
        "outage), have their batch enqueued again by the housekeeper.",
    )
    reaper_resends_with_key: bool = Field(
        default=True,
        description="A message a dead worker had handed to a provider with an idempotency "
        "key is sent again with that same key instead of ending unknown.",
    )
    ad_daily_cap: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Advertising messages one number may get per 24 h, across campaigns.",
    )
    retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="After this many days, `loa retention apply` replaces the numbers of "
        "finished messages by a keyed HMAC, drops their list cells (but district, ward and "
        "language), and forgets visitors, arrival event ids and processed arrival files.",
    )
    retention_key: GuardingSecret | None = Field(
        default=None,
        description="The key of that HMAC (16 characters or more, hard to guess; keep it: "
        "with it, and only with it, a number can still be looked up after retention).",
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="The Ed25519 key that signs the audit log's checkpoints: base64 of 32 "
        "random bytes, as `loa audit keygen` prints it (unset: the log still verifies, but "
        "its checkpoints are not signed and reports say so).",
    )
    audit_log_name: str = Field(
        default="loa",
        pattern=r"^[!-*,-~]{1,64}$",
        description="The log's name in its checkpoints and its verifier key, e.g. "
        "`loa/ninh-thuan` (printable, no spaces or '+').",
    )
    audit_checkpoint_minutes: int = Field(
        default=60,
        ge=1,
        le=24 * 60,
        description="How often the housekeeper signs a checkpoint, when a key is set.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    providers: dict[str, ProviderInstance] = Field(default_factory=_default_providers)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A URL redis-py can use: ``redis://``, ``rediss://`` or ``unix://``, a host, a
        database number (checked here once, rather than as a traceback in every command)."""
        if value is None:
            return value
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.get_secret_value())
            parts.port  # noqa: B018 - raises on a port that is not one
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("write redis://HOST:PORT/DB, rediss://… or unix://PATH")
        database = parts.path.strip("/")
        if parts.scheme != "unix" and database and not database.isdigit():
            raise ValueError(f"database {database!r}: a number (0 to 15 on most servers)")
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        """An Ed25519 seed: base64 of 32 bytes that are not a few repeated ones (checked
        here, at start-up, rather than at the first checkpoint)."""
        if value is not None:
            from ledger.audit.checkpoints import signing_key

            signing_key(value.get_secret_value())  # BadKey is a ValueError: named
        return value

    def retention_secret(self) -> str | None:
        """``LOA_RETENTION_KEY``'s value (what numbers are HMACed under: retention, a
        goal's numbers that acted), or None when none is set."""
        return self.retention_key.get_secret_value() if self.retention_key else None

    def signing_seed(self) -> bytes | None:
        """The checkpoints' signing key (32 bytes), or None when none is set."""
        if self.audit_signing_key is None:
            return None
        from ledger.audit.checkpoints import signing_key

        return signing_key(self.audit_signing_key.get_secret_value())

    def audit_key(self) -> tuple[str, bytes] | None:
        """The log's verifier key, (name, Ed25519 public key), to check its checkpoints'
        signatures by; None when no signing key is set."""
        seed = self.signing_seed()
        if seed is None:
            return None
        from ledger.audit.checkpoints import public_of

        return self.audit_log_name, public_of(seed)

    @field_validator("providers")
    @classmethod
    def _names_are_queue_safe(cls, value: dict[str, ProviderInstance]) -> dict[str, Any]:
        for name, instance in value.items():
            if not PROVIDER_NAME.match(name):
                raise ValueError(
                    f"provider name {name!r} must be lower case letters, digits, '-' or '_'"
                )
            if instance.type is None:
                instance.type = name
        return value

    @property
    def embedded(self) -> bool:
        """True when Loa runs its queue in this process (no Redis configured)."""
        return self.redis_url is None

    def ledger_url(self) -> str:
        """The ledger's SQLAlchemy URL, with the embedded SQLite default filled in."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.var_dir / 'loa.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
