"""``loa outcomes import`` as a Department's clerk runs it: counts imported and a day
imported again replacing it, a bad file refused naming each row and field (exit 2,
nothing imported), ``--skip-bad`` taking the rest, ``--numbers`` needing the retention
key."""

from __future__ import annotations

import json

from tests.scripts.test_cli import loa

GOAL = 'name = "Cài Bluezone"\ntarget = "50%"\ndeadline = 2020-09-30\npopulation = "dan-so.csv"\n'


def setup(tmp_path):
    (tmp_path / "muc-tieu.toml").write_text(GOAL, encoding="utf-8")
    (tmp_path / "dan-so.csv").write_text("Huyện,Dân số\nNinh Hải,500\nNinh Sơn,800\n", "utf-8")


def test_counts_imported_and_a_bad_file_refused_naming_its_rows(tmp_path):
    setup(tmp_path)
    good = tmp_path / "ngay-25.csv"
    good.write_text(
        "Huyện,Ngày,Số lượng\nNinh Hải,25/08/2020,40\nNinh Sơn,25/08/2020,60\n", "utf-8"
    )
    done = loa("outcomes", "import", str(good), "--goal", "muc-tieu.toml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["taken"] == 2
    again = loa("outcomes", "import", str(good), "--goal", "muc-tieu.toml", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["replaced"] == 2  # the same day again: replaced
    bad = tmp_path / "xau.csv"
    bad.write_text("area,date,count\nNinh Hải,2020-08-26,5\nĐà Lạt,2020-08-26,5\n"
                   "Ninh Sơn,2020-08-26,-1\n", "utf-8")  # fmt: skip
    refused = loa("outcomes", "import", str(bad), "--goal", "muc-tieu.toml", cwd=tmp_path)
    assert refused.returncode == 2
    assert "row 3: area: 'Đà Lạt' is no area of the goal" in refused.stderr
    assert "row 4: count: '-1' is not a count" in refused.stderr
    assert "nothing imported" in refused.stderr and "Traceback" not in refused.stderr
    taken = loa("outcomes", "import", str(bad), "--goal", "muc-tieu.toml", "--skip-bad",
                "--json", cwd=tmp_path)  # fmt: skip
    assert taken.returncode == 0 and json.loads(taken.stdout)["taken"] == 1
    numbers = tmp_path / "da-cai.csv"
    numbers.write_text("phone\n0912345678\n", "utf-8")
    keyless = loa("outcomes", "import", str(numbers), "--goal", "muc-tieu.toml", "--numbers",
                  cwd=tmp_path)  # fmt: skip
    assert keyless.returncode == 2 and "LOA_RETENTION_KEY" in keyless.stderr
