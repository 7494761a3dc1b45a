"""tools/eval_line.py: an evaluation's JSON as one line of a lent machine's call output."""

import json
import subprocess

from paths import ROOT
from scripts import run_python

TOOL = ROOT / "tools" / "eval_line.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_python("-S", TOOL, *args, cwd=None, timeout=60)


def test_a_line_per_evaluation_and_one_line_for_a_bad_file(tmp_path):
    skills = [{"label": "001", "success": 0.140625, "fell": 0.65625},
              {"label": "004", "success": None, "fell": 0.0},
              {"label": "031", "success": 0.40625, "fell": 0.5625}]
    (tmp_path / "YL.eval.json").write_text(json.dumps({"checkpoint": "x", "skills": skills}))
    (tmp_path / "bad.eval.json").write_text("{not json")
    done = _run(str(tmp_path / "YL.eval.json"), str(tmp_path / "bad.eval.json"))
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["YL: success % 001 14.1, 031 40.6; mean 27.3; fell % (all skills) 40.6"]
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(f"eval_line.py: {tmp_path / 'bad.eval.json'}")


def test_the_kept_round_12_evaluation():
    done = _run(str(ROOT / "results" / "skills12" / "YH_eval_3.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("013 57.8, 031 40.6, 034 0.0; mean 41.1; fell % (all skills) 60.6")


def test_a_folder_evaluation_is_a_line_per_kept_file(tmp_path):
    """`python -m skillmimic.evaluate --checkpoint RUN/policies` (tools/layup_continue.sh's KEPT_EVAL) writes a curve:
    a line per policy file, named by the JSON's stem and the file's, with its samples."""
    curve = [{"policy": f"iter_{i:06d}.pt", "iteration": i, "samples": 262144 * i,
              "skills": [{"label": "001", "success": s, "fell": 0.5}]} for i, s in ((40, 0.421875), (80, 0.1875))]
    (tmp_path / "YH.kept_pick_40.json").write_text(json.dumps({"checkpoint": "run/YH/policies", "curve": curve}))
    done = _run(str(tmp_path / "YH.kept_pick_40.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "YH.kept_pick_40 iter_000040.pt (10,485,760 samples): success % 001 42.2; mean 42.2; fell % (all skills) 50.0",
        "YH.kept_pick_40 iter_000080.pt (20,971,520 samples): success % 001 18.8; mean 18.8; fell % (all skills) 50.0"]


def test_a_task_evaluation_is_its_line(tmp_path):
    """A high-level controller's evaluation (`python -m skillmimic.evaluate_task --json-out`, a hlc arm's)."""
    result = {"checkpoint": "run/HT/policy.pt", "task": "throwing", "episodes": 64, "success": 0.125,
              "fell": 0.03125, "timed_out": 0.84375, "mean_episode_steps": 290.0, "llc": "YH_policy.pt"}
    (tmp_path / "HT.eval.json").write_text(json.dumps(result))
    done = _run(str(tmp_path / "HT.eval.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "HT: task throwing: success 12.5%, fell 3.1%, timed out 84.4% (64 episodes)"]
