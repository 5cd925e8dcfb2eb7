"""``loa text check`` and a campaign's texts refuse a text that shows nothing: only
spaces, zero-width and control characters would be billed as a part and read as blank."""

from __future__ import annotations

import pytest

from campaigns.text import shows_anything
from tests.scripts.test_cli import loa

BLANK = ["", " \t\n", "\u200b\u200c\u2060", "\u00a0\u3000\u2028", "\u202e\u200e\x1b"]


@pytest.mark.parametrize("text", BLANK)
def test_a_text_of_nothing_visible_shows_nothing(text):
    assert not shows_anything(text)


@pytest.mark.parametrize("text", ["a", "\u200b.", "😀", "Cài\u00a0Bluezone", "٣"])
def test_one_visible_character_is_enough(text):
    assert shows_anything(text)


def test_text_check_refuses_a_text_of_zero_width_characters(tmp_path):
    blank = loa("text", "check", "\u200b\u200c\u2060", cwd=tmp_path)
    assert blank.returncode == 2
    assert blank.stderr.strip() == "error: the text is empty (or shows nothing): nothing to send"


def test_text_check_shows_the_text_as_text_and_counts_the_vietnamese_way(tmp_path):
    """The không dấu line printed the text raw: an escape sequence drove the terminal, a
    direction override reordered it, `[bold]` was read as markup; counts were 5000 and
    6536 where every other command writes 5.000."""
    shown = loa("text", "check", "[bold]x\u202eabc\x1b[31mred", cwd=tmp_path).stdout
    (line,) = [x for x in shown.splitlines() if x.startswith("Không dấu")]
    assert line.endswith(": [bold]xabc\ufffd[31mred") and "\x1b" not in shown
    long = loa("text", "check", "á" * 5000, cwd=tmp_path).stdout
    assert "(5.000 đơn vị · units)" in long and "Số tin · parts: 75" in long


def test_text_check_refuses_what_no_sms_could_be(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("a" * 400_001, encoding="utf-8")  # counted in minutes at 300 MB
    for args in (("-f", str(big)), ("a" * 100_001,)):
        refused = loa("text", "check", *args, cwd=tmp_path)
        assert refused.returncode == 2
        assert "over 100.000 characters: no SMS is that long" in refused.stderr
