"""Damaged lists, read as the planner reads them (``open_list(...).rows()``): a quote that
is never closed, cells over the CSV reader's limit, bytes the file's encoding cannot
read, Excel's decimal comma, a folder or an empty sheet given as the list.

A damaged row is rejected with a reason and the rows around it go on; a damage that
would silently merge rows (an open quote swallowing the rest of the file) refuses the
file, naming the row where it starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from campaigns.phones import normalise
from campaigns.recipients import ListError, open_list

HEADER = "Họ và tên,Số điện thoại,Huyện\n"
#: csv's default limit on one field (``csv.field_size_limit()``), in characters.
FIELD_LIMIT = 131_072


def resident(number: int) -> str:
    """One well-formed row: a Vietnamese name, a distinct mobile number, a district."""
    return f"Người {number},09120{number:05d},Q{number % 5}\n"


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def read(path: Path, **options: str) -> list:
    return list(open_list(path, **options).rows())


def test_a_quote_never_closed_refuses_the_list_naming_the_row_it_opened(tmp_path):
    """The attacker's list: 1,000 rows, row 11's name cell opens a quote and nothing
    closes it. Read leniently, rows 11 to 1,001 became one cell (rows read 11)."""
    rows = [resident(n) for n in range(1000)]
    rows[9] = '"Tí,0912000009,Q4\n'  # the 10th data row: row 11 of the file
    path = write(tmp_path, HEADER + "".join(rows))
    with pytest.raises(ListError) as refused:
        read(path)
    said = str(refused.value)
    assert said.startswith(f"{path}: row 11: ") and "never closed" in said


def test_a_stray_quote_closed_by_a_later_quoted_cell_is_named(tmp_path):
    """Excel quotes a cell holding the delimiter, so the next such cell closes a stray
    quote: the rows between would be read as one cell, with no error."""
    text = (
        HEADER
        + resident(1)
        + '"Tí,0912000002,Q2\n'  # row 3: the stray quote
        + resident(3)
        + resident(4)
        + '"Nguyễn, An",0912000005,Q0\n'  # row 6: a legitimately quoted cell
        + resident(6)
    )
    with pytest.raises(ListError, match=r"list\.csv: row 3: .*quote"):
        read(write(tmp_path, text))


def test_a_quoted_cell_spanning_far_too_many_lines_is_refused(tmp_path):
    """Lines that do not look like rows (no phone number in them) but more than any
    address or note holds: a quote not closed where it should be."""
    notes = "\n".join(f"ghi chú {n}" for n in range(200))
    text = HEADER + resident(1) + f'"{notes}",0912000002,Q2\n' + resident(3)
    with pytest.raises(ListError, match=r"list\.csv: row 3: .*lines"):
        read(write(tmp_path, text))


def test_a_stray_quote_running_past_the_cell_limit_names_where_it_opened(tmp_path):
    """6,000 rows after an open quote are more than csv's field limit (128 KB): the
    reader stops inside the quote, far below the row where it opened. That is the
    open quote again, not one unreadable row to skip (the reader would go on at the
    line where it stopped, the rows before it lost)."""
    rows = [resident(n) for n in range(6000)]
    rows[4] = '"Tí,0912000004,Q4\n'  # row 6
    assert sum(map(len, rows[5:])) > FIELD_LIMIT
    with pytest.raises(ListError) as refused:
        read(write(tmp_path, HEADER + "".join(rows)))
    assert ": row 6: " in str(refused.value) and "quote" in str(refused.value)


@pytest.mark.parametrize("end", ["\n", ""])
def test_an_address_on_two_lines_is_still_one_cell(tmp_path, end):
    """A quoted cell with a line break is legitimate CSV, also as the very last row of a
    file without a final newline (the reader then reads to the end of the file)."""
    text = (
        "Họ và tên,Địa chỉ,Số điện thoại\n"
        '"Trần Thị Bình","12 Lê Lợi\nPhường 1, Phan Rang",0912000001\n'
        "Chi,Ninh Hải,0912000002\n"
        f'Dũng,"Thôn 3\r\nXã Phước Hà",0912000003{end}'
    )
    rows = read(write(tmp_path, text))
    assert [(r.phone, r.values, r.problem) for r in rows] == [
        ("0912000001", ("Trần Thị Bình", "12 Lê Lợi\nPhường 1, Phan Rang"), ""),
        ("0912000002", ("Chi", "Ninh Hải"), ""),
        ("0912000003", ("Dũng", "Thôn 3\r\nXã Phước Hà"), ""),
    ]


def test_a_number_in_a_note_on_two_lines_is_no_row(tmp_path):
    """Only a line as wide as the header with a textable number where the phone goes
    is taken for a swallowed row: a note mentioning a number is still a note."""
    text = (
        "Họ và tên,Số điện thoại,Ghi chú\n"
        'An,0912000001,"gọi lại, số 0912 999 999, sau 5h\nhoặc nhắn tin"\n'
        "Bình,0912000002,\n"
    )
    rows = read(write(tmp_path, text))
    assert [(r.phone, r.problem) for r in rows] == [("0912000001", ""), ("0912000002", "")]
    assert rows[0].values[1] == "gọi lại, số 0912 999 999, sau 5h\nhoặc nhắn tin"


def test_a_header_cell_over_the_limit_is_named(tmp_path):
    path = write(tmp_path, "H" * 200_000 + ",Số điện thoại\n" + resident(1))
    with pytest.raises(ListError) as refused:
        open_list(path)
    said = str(refused.value)
    assert said.startswith(f"{path}: ") and "\n" not in said
    assert "header" in said.removeprefix(f"{path}: ")  # not in the path: in what it says
    assert "HHHH" not in said  # the cell itself is not repeated


def test_one_cell_over_the_limit_rejects_its_row_and_the_others_go_on(tmp_path):
    huge = "A" * 200_000
    text = HEADER + resident(1) + f"{huge},0912000002,Q2\n" + resident(3) + resident(4)
    rows = read(write(tmp_path, text))
    assert [(r.row, r.phone, r.problem) for r in rows] == [
        (2, "0912000001", ""),
        (3, "", "unreadable_row"),
        (4, "0912000003", ""),
        (5, "0912000004", ""),
    ]


def test_a_few_rows_with_bytes_utf8_cannot_read_are_rejected_the_others_kept(tmp_path):
    """A UTF-8 list (its names say so) with one damaged byte in a name and one in a
    number: those two rows are rejected as ``bad_encoding``, every other row is read,
    and nothing undecodable travels on (a rejects file is written in UTF-8)."""
    lines = [HEADER.encode()] + [resident(n).encode() for n in range(1, 4001)]
    # Past the 64 KB the encoding is told from (a damaged start is not UTF-8 at all).
    assert len(b"".join(lines[:3000])) > 64 * 1024
    lines[3000] = "Người 3000".encode() + b"\xff,0912003000,Q0\n"  # row 3001
    lines[3800] = b"Ng\xc6\xb0\xe1i 3800,09120\x9603800,Q0\n"  # row 3801
    path = tmp_path / "list.csv"
    path.write_bytes(b"".join(lines))
    rows = read(path)
    assert len(rows) == 4000 and [r.row for r in rows] == list(range(2, 4002))
    damaged = {r.row: r for r in rows if r.problem}
    assert sorted(damaged) == [3001, 3801]
    assert {r.problem for r in damaged.values()} == {"bad_encoding"}
    for row in rows:  # every value can be written out as UTF-8
        "".join((row.phone, *row.values)).encode("utf-8")
    assert rows[0].values == ("Người 1", "Q1") and normalise(rows[-1].phone).e164 == (
        "+84912004000"
    )


def test_a_dozen_damaged_rows_in_a_long_utf8_list_are_each_rejected(tmp_path):
    """More than ten damaged rows, but far fewer than one in a thousand: damage, not
    another encoding, so each is rejected and the list read to its end."""
    lines = [HEADER.encode()] + [resident(n).encode() for n in range(1, 20_001)]
    damaged = list(range(13_000, 19_000, 500))  # indexes: row = index + 1
    for index in damaged:
        lines[index] = lines[index].replace(b"Ng", b"N\xe1g", 1)
    path = tmp_path / "list.csv"
    path.write_bytes(b"".join(lines))
    rows = read(path)
    assert len(rows) == 20_000
    assert [r.row for r in rows if r.problem == "bad_encoding"] == [i + 1 for i in damaged]
    assert len(damaged) == 12


def test_a_decimal_comma_zero_in_a_semicolon_file_is_a_whole_number(tmp_path):
    """What Excel writes in Vietnamese settings for a number typed without its 0:
    ``912345678,0`` (``912345678.0`` in a comma file). Only zeros after the comma."""
    text = (
        "Số điện thoại;Tên\n"
        "912345678,0;A\n"
        "84912345681,00;B\n"
        "912.345.679,00;C\n"  # '.' groups thousands where ',' is the decimal mark
        "912345680,5;D\n"
        "0912345682;E\n"
    )
    rows = read(write(tmp_path, text))
    assert [r.phone for r in rows] == [
        "912345678",
        "84912345681",
        "912.345.679",
        "912345680,5",
        "0912345682",
    ]
    assert normalise(rows[2].phone).e164 == "+84912345679"


def test_a_comma_in_a_comma_files_phone_cell_is_left_as_written(tmp_path):
    """In a comma-separated file a comma inside a cell is no decimal mark."""
    path = write(tmp_path, 'Số điện thoại,Tên\n"912345678,0",A\n')
    assert [r.phone for r in read(path)] == ["912345678,0"]


def test_a_folder_given_as_the_list_is_called_a_folder(tmp_path):
    folder = tmp_path / "lists.csv"
    folder.mkdir()
    with pytest.raises(ListError) as refused:
        open_list(folder)
    said = str(refused.value)
    assert said.startswith(f"{folder}: ")  # the rest, not the path, says what it is
    assert "folder" in said.removeprefix(f"{folder}: ") and "no such file" not in said


def test_an_xlsx_whose_first_sheet_is_empty_names_its_sheets_and_sheet(tmp_path):
    path = tmp_path / "list.xlsx"
    book = Workbook()
    book.active.title = "Bìa"
    data = book.create_sheet("Danh sách")
    data.append(["Họ tên", "SĐT"])
    data.append(["An", "0912345678"])
    book.save(path)
    with pytest.raises(ListError) as refused:
        open_list(path)
    said = str(refused.value)
    assert "--sheet" in said and "Bìa" in said and "Danh sách" in said
    assert [r.phone for r in read(path, sheet="Danh sách")] == ["0912345678"]


def test_utf16_named_for_a_file_without_its_bom_is_named(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("Số điện thoại\tTên\n0912345678\tAn\n".encode("utf-16-le"))
    with pytest.raises(ListError) as refused:
        open_list(path, encoding="utf-16")
    said = str(refused.value)
    assert said.startswith(f"{path}: ") and "utf-16" in said.removeprefix(f"{path}: ")
    assert [r.phone for r in read(path, encoding="utf-16-le")] == ["0912345678"]
