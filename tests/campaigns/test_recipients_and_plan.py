from pathlib import Path

import pytest

from benchmarks.generate_list import write as write_list
from campaigns.plan import DUPLICATE, PlannedMessage, Planner, RejectedRow
from campaigns.recipients import ListError, fold, read_list
from campaigns.spec import load_spec
from campaigns.text import Encoding

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml"


def test_vietnamese_headers_are_found_without_diacritics():
    assert fold("Số điện thoại") == "sodienthoai"
    assert fold("SĐT") == "sdt"


def test_rows_stream_with_their_line_numbers_and_fields(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "\ufeffHọ tên,SĐT,Huyện\nAn,0912345678,Ninh Sơn\n\nBình,0987654321,Bác Ái\n",
        encoding="utf-8",
    )
    rows = list(read_list(path))
    assert [(r.row, r.phone) for r in rows] == [(2, "0912345678"), (4, "0987654321")]
    assert rows[0].fields == {"Họ tên": "An", "Huyện": "Ninh Sơn"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        ("Họ tên,Địa chỉ\nAn,x\n".encode(), "no phone column"),
        (b"T\xean,S\xd0T\nAn,0912345678\n", "not UTF-8"),  # "Tên,SĐT" in Windows-1258,
    ],
)
def test_unreadable_lists_are_named(tmp_path, content, problem):
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    with pytest.raises(ListError) as caught:
        list(read_list(path))
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_missing_list_is_named(tmp_path):
    with pytest.raises(ListError, match="cannot read"):
        list(read_list(tmp_path / "missing.csv"))


def test_the_plan_accounts_for_every_row(tmp_path):
    path = tmp_path / "residents.csv"
    write_list(path, 3000, seed=7)
    planner = Planner(load_spec(EXAMPLE))
    decisions = list(planner.plan(read_list(path)))
    summary = planner.summary
    assert len(decisions) == summary.rows_read == 3000
    planned = [d for d in decisions if isinstance(d, PlannedMessage)]
    rejected = [d for d in decisions if isinstance(d, RejectedRow)]
    assert summary.planned == len(planned)
    assert summary.duplicates == sum(d.reason == DUPLICATE for d in rejected) > 0
    assert summary.rejected_total == len(rejected) - summary.duplicates > 0
    assert summary.legacy_converted > 0
    assert len({d.phone.e164 for d in planned}) == len(planned)
    assert all(d.encoding is Encoding.UCS2 and d.parts == 3 for d in planned)
    assert summary.parts == 3 * len(planned)


def test_the_language_column_picks_the_text(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("phone,language\n0912345678,en\n0987654321,ko\n", encoding="utf-8")
    planned = list(Planner(load_spec(EXAMPLE)).plan(read_list(path)))
    assert [(p.language, p.encoding) for p in planned] == [
        ("en", Encoding.GSM7),
        ("vi", Encoding.UCS2),
    ]
