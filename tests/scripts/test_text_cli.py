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
