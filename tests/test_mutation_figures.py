"""``benchmarks/mutation.py`` reads mutmut's own record of each mutant: the score it prints
(the README's figures) counts a hung mutant as killed and leaves skipped ones out."""

from __future__ import annotations

import json

import benchmarks.mutation as mutation


def test_a_module_s_score_from_mutmut_s_exit_codes(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "MUTANTS", tmp_path)
    (tmp_path / "campaigns").mkdir()
    codes = {"a": 1, "b": 1, "c": 36, "d": 0, "e": 33, "f": 34, "g": 3, "h": 5}
    (tmp_path / "campaigns" / "hours.py.meta").write_text(
        json.dumps({"exit_code_by_key": codes}), "utf-8"
    )
    found = mutation.score("campaigns/hours.py")
    # Killed: two failing tests, a timeout and pytest's internal error; one survivor, two
    # unreached by any test; one skipped, out of the judged seven.
    assert (found.mutants, found.killed, found.hung, found.survived, found.no_tests) == (
        8,
        4,
        1,
        1,
        2,
    )
    assert found.score == 4 / 7
    assert mutation.survivors("campaigns/hours.py") == ["d", "e", "h"]
    assert "57.1 %" in mutation.table([found])


def test_every_rule_module_named_for_mutation_exists():
    modules = mutation.rule_modules()
    assert "ledger/receipts.py" in modules and "campaigns/phones.py" in modules
    assert all((mutation.ROOT / module).is_file() for module in modules)
