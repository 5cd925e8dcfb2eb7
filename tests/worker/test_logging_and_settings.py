import json

import pytest
import structlog
from pydantic import ValidationError

from worker.logging import bound, configure_logging, mask_text
from worker.settings import Settings


@pytest.mark.parametrize(
    "text",
    [
        "+84912345678",
        "84912345678",
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "+82 10-2345-6789",
        "912345678",
        "to=0084912345678",
        "(0912345678)",
        "event arr-84912345678-1 taken",  # a number inside an id is still a number
    ],
)
def test_phone_numbers_are_masked_in_any_text(text):
    masked = mask_text(f"sending to {text} now")
    digits = "".join(ch for ch in text if ch.isdigit())
    assert digits not in "".join(ch for ch in masked if ch.isdigit() or ch == "*")
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [
        "batch 12 of 4970 rows, message 3577",
        "campaign chaos-redis-2026113001203 started",  # an id, not a number
        "took 2026113001 ms",  # a long run that no phone number looks like
        "at 2026-11-30 06:41:33",
    ],
)
def test_ids_counts_and_times_are_left_alone(text):
    assert mask_text(text) == text


def test_log_lines_are_json_with_context_and_no_personal_data(capsys):
    configure_logging("INFO", "json")
    log = structlog.get_logger("test")
    with bound(campaign_id="c1", message_id=7):
        log.info("message.sent", to="+84912345678", body="Đề nghị cài đặt Bluezone")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["campaign_id"] == "c1" and line["message_id"] == 7
    assert line["to"] == "+8491*****78"
    assert "Bluezone" not in json.dumps(line, ensure_ascii=False)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOA_DATABASE_URL", "postgresql://loa:hunter2@db/loa")
    monkeypatch.setenv("LOA_PROVIDERS__SANDBOX__TYPE", "sandbox")
    monkeypatch.setenv("LOA_PROVIDERS__SANDBOX__LATENCY_MS", "250")
    monkeypatch.setenv("LOA_BATCH_SIZE", "500")
    settings = Settings()
    assert settings.batch_size == 500
    assert settings.providers["sandbox"].model_dump() == {"type": "sandbox", "latency_ms": 250}
    assert "hunter2" not in repr(settings)
    assert settings.embedded


def test_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.ledger_url() == "sqlite:///var/loa.db"
    assert settings.embedded and list(settings.providers) == ["sandbox"]


def test_a_provider_name_that_cannot_be_a_queue_is_refused(monkeypatch):
    monkeypatch.setenv("LOA_PROVIDERS__BAD NAME__TYPE", "sandbox")
    with pytest.raises(ValidationError, match="provider name"):
        Settings()
