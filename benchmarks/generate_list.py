"""Synthetic resident lists shaped like the ones operators receive.

Numbers are written every way real exports write them, a few cells are not numbers at
all, some residents appear twice with their number spelt differently, and some numbers
are legacy 11-digit ones. Deterministic for a given seed.

    uv run python -m benchmarks.generate_list examples/ninh-thuan-residents.csv --rows 5000
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from pathlib import Path

DISTRICTS = (
    "Phan Rang–Tháp Chàm",
    "Bác Ái",
    "Ninh Hải",
    "Ninh Phước",
    "Ninh Sơn",
    "Thuận Bắc",
    "Thuận Nam",
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Đức", "Thanh", "Quốc", "Thu", "Gia")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hương", "Khánh", "Lan", "Long",
         "Mai", "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trung", "Tú", "Yến")  # fmt: skip
PREFIXES = ("32", "33", "35", "37", "39", "86", "96", "97", "98", "81", "83", "85", "88",
            "91", "94", "70", "76", "77", "79", "89", "90", "93", "56", "58", "92", "59")  # fmt: skip
LEGACY = ("166", "168", "169", "121", "122", "123", "127", "188")
#: Cells that are not textable numbers, each with the reason Loa gives.
BAD_CELLS = ("", "chưa có", "0259 3822 123", "09123456", "0912345678901", "0112345678", "không")


def _spell(national: str, rng: random.Random) -> str:
    """One of the ways a person or a spreadsheet writes a 9-digit national number."""
    style = rng.randrange(9)
    a, b, c = national[:2], national[2:5], national[5:]
    return (
        f"0{national}",
        f"+84{national}",
        f"84{national}",
        f"0{a}{b[0]} {b[1:]}{c[0]} {c[1:]}",
        f"0{a}{b[0]}.{b[1:]}{c[0]}.{c[1:]}",
        f"+84 {a}{b[0]} {b[1:]}{c[0]} {c[1:]}",
        f"{national}",
        f"{national}.0",
        f"(0{a}{b[0]}) {b[1:]}{c[0]}-{c[1:]}",
    )[style]


def rows(
    count: int, seed: int = 2020, invalid: float = 0.03, duplicates: float = 0.02
) -> Iterator[dict[str, str]]:
    """``count`` list rows: ``invalid`` and ``duplicates`` are shares of the rows;
    about 2 % are legacy 11-digit numbers."""
    rng = random.Random(seed)
    seen: list[str] = []
    for index in range(1, count + 1):
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        roll = rng.random()
        if roll < invalid:
            phone = rng.choice(BAD_CELLS)
        elif roll < invalid + duplicates and seen:
            phone = _spell(rng.choice(seen), rng)  # the same resident, spelt again
        elif roll < invalid + duplicates + 0.02:
            phone = f"0{rng.choice(LEGACY)}{rng.randrange(10_000_000):07d}"
        else:
            national = rng.choice(PREFIXES) + f"{rng.randrange(10_000_000):07d}"
            seen.append(national)
            phone = _spell(national, rng)
        yield {
            "STT": str(index),
            "Họ và tên": name,
            "Số điện thoại": phone,
            "Huyện/Thành phố": rng.choice(DISTRICTS),
        }


HEADER = ("STT", "Họ và tên", "Số điện thoại", "Huyện/Thành phố")


def write(
    path: Path, count: int, seed: int = 2020, invalid: float = 0.03, duplicates: float = 0.02
) -> None:
    """Write a list of ``count`` rows as UTF-8 CSV, streaming."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows(count, seed, invalid, duplicates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    write(args.path, args.rows, args.seed)


if __name__ == "__main__":
    main()
