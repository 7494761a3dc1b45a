"""tools/skill_table.py: per-skill results of several evaluations side by side, with the paper's success rates."""

import importlib.util
import json

import pytest

from paths import ROOT

spec = importlib.util.spec_from_file_location("skill_table", ROOT / "tools" / "skill_table.py")
skill_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(skill_table)


def _eval(tmp_path, name, rows):
    """An evaluation JSON of (label, success or None, accuracy, fell) rows."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"skills": [{"label": lab, "skill": "x", "success": s, "accuracy": a, "fell": f}
                                           for lab, s, a, f in rows]}))
    return str(path)


def test_a_row_per_skill_a_column_per_run_and_the_means(tmp_path):
    a = _eval(tmp_path, "a", [("031", 0.5, 0.2, 0.25), ("002", None, 0.1, 0.0)])
    b = _eval(tmp_path, "b", [("031", 1.0, 0.3, 0.0)])
    text = skill_table.table([skill_table.load(f"A={a}"), skill_table.load(f"B={b}")])
    lines = text.splitlines()
    assert lines[0] == "| skill | A: success / accuracy / fell | B: success / accuracy / fell | paper: success |"
    assert lines[2] == "| 002 rebound | n/a / 10.0 / 0.0 | - |  |"  # no success test; B did not evaluate it
    assert lines[3] == "| 031 layup | 50.0 / 20.0 / 25.0 | 100.0 / 30.0 / 0.0 | 99.1 |"
    assert lines[4] == "| mean (success: the tested skills) | 50.0 / 15.0 / 12.5 | 100.0 / 30.0 / 0.0 | |"


def test_a_missing_or_foreign_file_is_one_line(tmp_path):
    with pytest.raises(skill_table.UserError, match="no such file"):
        skill_table.load(str(tmp_path / "none.json"))
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(skill_table.UserError, match="not the JSON of one policy's evaluation"):
        skill_table.load(str(tmp_path / "other.json"))
