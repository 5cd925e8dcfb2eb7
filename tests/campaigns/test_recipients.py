"""Lists in every format and encoding operators receive give the same recipients."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import pytest
from openpyxl import Workbook

from campaigns.recipients import EXTRA_CELLS, ListError, fold, open_list
from tests.vietnamese import to_cp1258

ROWS = [
    ["Họ và tên", "Số điện thoại", "Huyện/Thành phố"],
    ["Đặng Thị Hương", "0912 345 678", "Phan Rang–Tháp Chàm"],
    ["Nguyễn Văn Ước", "+84 987 654 321", "Ninh Hải"],
    ["Lê Ngọc Ẩn", "01662345678", "Bác Ái"],
    ["Trần Đức", "912345679", "Thuận Nam"],
]


def as_csv(delimiter: str = ",") -> str:
    lines = []
    for row in ROWS:
        lines.append(delimiter.join(f'"{c}"' if delimiter in c else c for c in row))
    return "\r\n".join(lines) + "\r\n"


def save(tmp_path: Path, kind: str) -> Path:
    if kind == "xlsx":
        path = tmp_path / "list.xlsx"
        book = Workbook()
        sheet = book.active
        for row in ROWS:
            sheet.append(row)
        sheet["B5"] = 912345679  # Excel turned a number without its 0 into a number
        book.save(path)
        return path
    text = as_csv("\t" if kind.startswith("utf-16") else ",")
    data = {
        "utf-8": text.encode("utf-8"),
        "utf-8-bom": codecs.BOM_UTF8 + text.encode("utf-8"),
        "utf-16-le-bom": text.encode("utf-16"),  # Excel's "Unicode text": BOM, tabs
        "utf-16-be-bom": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "cp1258": to_cp1258(text * 20),  # enough text for the detector to be sure
    }[kind]
    path = tmp_path / ("list.txt" if kind.startswith("utf-16") else "list.csv")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "kind", ["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "cp1258", "xlsx"]
)
def test_every_format_gives_the_same_rows_and_names(tmp_path, kind):
    opened = open_list(save(tmp_path, kind))
    assert opened.phone_header == "Số điện thoại"
    assert opened.columns == ["Họ và tên", "Huyện/Thành phố"]
    rows = list(opened.rows())[:4]
    assert [r.phone for r in rows] == [
        "0912 345 678",
        "+84 987 654 321",
        "01662345678",
        "912345679",
    ]
    assert [r.values for r in rows] == [(row[0], row[2]) for row in ROWS[1:]]
    assert rows[0].row == 2


def test_text_is_nfc_after_reading(tmp_path):
    import unicodedata

    path = tmp_path / "nfd.csv"
    path.write_text(unicodedata.normalize("NFD", as_csv()), encoding="utf-8")
    names = [r.values[0] for r in open_list(path).rows()]
    assert names[0] == "Đặng Thị Hương" and unicodedata.is_normalized("NFC", names[0])


def test_an_unclear_encoding_names_the_option(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes("Nom,Téléphone\nRené,0912345678\nFrançoise,0987654321\n".encode("cp1252") * 30)
    with pytest.raises(ListError, match="--encoding"):
        open_list(path)
    rows = list(open_list(path, encoding="cp1252").rows())
    assert rows[0].values == ("René",)


def test_utf8_that_breaks_later_names_the_row_and_the_option(tmp_path):
    """A Windows-1258 file whose first 64 KB are plain ASCII: its rows with diacritics
    are far more than the few damaged rows a UTF-8 list may reject (``bad_encoding``),
    so the list stops at the first, advising --encoding."""
    path = tmp_path / "list.csv"
    good = "phone,name\n" + "0912345678,An\n" * 8000  # longer than the detector's sample
    path.write_bytes(good.encode() + to_cp1258("0987654321,Bình\n") * 20)
    opened = open_list(path)
    with pytest.raises(ListError, match=r"row 8002 .*--encoding"):
        list(opened.rows())


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.csv", b"", "empty file"),
        ("blank.csv", b"\n\n", "empty file"),
        ("nophone.csv", "Họ tên,Địa chỉ\nAn,x\n".encode(), "no phone column"),
        ("list.pdf", b"%PDF", "unknown list format"),
        ("fake.xlsx", b"not a zip", "not a readable XLSX"),
    ],
)
def test_unreadable_lists_are_named(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ListError) as caught:
        list(open_list(path).rows())
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_missing_list_is_named(tmp_path):
    with pytest.raises(ListError, match="no such file"):
        open_list(tmp_path / "missing.csv")


def test_the_phone_column_can_be_named(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Khách,Liên hệ\nAn,0912345678\n", encoding="utf-8")
    with pytest.raises(ListError, match="--phone-column"):
        open_list(path)
    assert next(open_list(path, phone_column="liên hệ").rows()).phone == "0912345678"


def test_semicolon_lists_are_sniffed(tmp_path):
    path = tmp_path / "list.txt"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(ROWS)
    assert next(open_list(path).rows()).values == ("Đặng Thị Hương", "Phan Rang–Tháp Chàm")


def test_a_csv_written_with_semicolons_is_read_as_such(tmp_path):
    """What Excel writes where the comma is the decimal mark, as in Vietnamese settings."""
    path = tmp_path / "list.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(ROWS)
    assert next(open_list(path).rows()).values == ("Đặng Thị Hương", "Phan Rang–Tháp Chàm")


def test_vietnamese_headers_are_found_without_diacritics():
    assert fold("Số điện thoại") == "sodienthoai"
    assert fold("SĐT") == "sdt"


def test_a_header_without_rows_is_an_empty_list(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Họ tên,SĐT\n\n", encoding="utf-8")
    with pytest.raises(ListError, match="no rows"):
        list(open_list(path).rows())


def test_a_row_longer_than_the_header_is_marked_not_cut(tmp_path):
    """A filled cell beyond the header's columns has no name: the row is marked unusable
    (``extra_cells``), kept whole for the rejects file, and the rows around it go on."""
    path = tmp_path / "list.csv"
    path.write_text(
        "Họ tên,SĐT\nAn,0912345678\nBình,0987654321,Ninh Hải,\nChi,0971234567\n",
        encoding="utf-8",
    )
    rows = list(open_list(path).rows())
    assert [(r.row, r.phone, r.problem) for r in rows] == [
        (2, "0912345678", ""),
        (3, "0987654321", EXTRA_CELLS),
        (4, "0971234567", ""),
    ]


def test_empty_cells_beyond_the_header_are_harmless(tmp_path):
    """Many exports end each row with a separator (or two): nothing is lost there."""
    path = tmp_path / "list.csv"
    path.write_text("Họ tên,SĐT\nAn,0912345678,\nBình,0987654321, ,\n", encoding="utf-8")
    rows = list(open_list(path).rows())
    assert [(r.row, r.phone, r.values) for r in rows] == [
        (2, "0912345678", ("An",)),
        (3, "0987654321", ("Bình",)),
    ]


def test_an_xlsx_cell_beyond_the_header_marks_its_row(tmp_path):
    path = tmp_path / "list.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["Họ tên", "SĐT"])
    sheet.append(["An", "0912345678"])
    sheet.append(["Bình", "0987654321", None, "ghi chú"])
    book.save(path)
    rows = list(open_list(path).rows())
    assert [(r.row, r.problem) for r in rows] == [(2, ""), (3, EXTRA_CELLS)]


def test_an_xlsx_whose_strings_unpack_to_gigabytes_is_refused_before_parsing(tmp_path):
    """A crafted workbook: one row, and a shared-strings part that unpacks several
    hundredfold (the attack: 826 KB becoming gigabytes in openpyxl's memory)."""
    import zipfile

    good = tmp_path / "good.xlsx"
    book = Workbook()
    book.active.append(["Họ tên", "SĐT"])
    book.active.append(["An", "0912345678"])
    book.save(good)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            out.writestr(item, source.read(item.filename))
        out.writestr("xl/padding.xml", b"<si><t/></si>" * 3_000_000)  # 39 MB, ~1000-fold
    with pytest.raises(ListError, match=r"bomb.xlsx: part xl/padding.xml unpacks \d+-fold"):
        list(open_list(bomb).rows())
    assert [r.phone for r in open_list(good).rows()] == ["0912345678"]


def test_an_xlsx_whose_shared_strings_would_fill_the_memory_is_refused(tmp_path, monkeypatch):
    """Under the ratio, shared strings can still be gigabytes (a 40 MB file, 52-fold, took
    12 GB): beyond the cap, refused before parsing, naming the file and the way out."""
    import zipfile

    from campaigns import workbook

    plain, path = tmp_path / "plain.xlsx", tmp_path / "lon.xlsx"
    book = Workbook()
    book.active.append(["Họ tên", "SĐT"])
    for i in range(200):
        book.active.append([f"Người dân số {i:04d}", f"0912{i:06d}"])
    book.save(plain)  # openpyxl writes inline strings: Excel's shared ones added here
    strings = "".join(f"<si><t>Người dân số {i:04d}</t></si>" for i in range(200))
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            out.writestr(item, source.read(item.filename))
        out.writestr("xl/sharedStrings.xml", f"<sst>{strings}</sst>".encode())  # ~7 KB
    monkeypatch.setattr(workbook, "XLSX_MAX_SHARED_STRINGS", 1024)
    with pytest.raises(ListError, match=r"lon.xlsx: its shared strings .* save the list as CSV"):
        list(open_list(path).rows())
    monkeypatch.setattr(workbook, "XLSX_MAX_SHARED_STRINGS", 1 << 20)
    assert len(list(open_list(path).rows())) == 200


def test_a_list_without_a_header_is_named_without_repeating_its_first_recipient(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("0912345678,Nguyễn Văn A,Ninh Hải\n0987654321,Trần B,Phan Rang\n", "utf-8")
    with pytest.raises(ListError) as refused:
        list(open_list(path).rows())
    said = str(refused.value)
    assert "looks like a recipient" in said
    assert "0912345678" not in said and "Nguyễn" not in said
