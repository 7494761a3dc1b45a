"""tools/plot_curve.py --lineage: the series of one policy trained over several runs (no matplotlib needed)."""

import importlib.util
import json

import pytest

from paths import ROOT

spec = importlib.util.spec_from_file_location("plot_curve", ROOT / "tools" / "plot_curve.py")
plot_curve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_curve)

HEADER = "iteration,samples,mean_reward,episode_length,samples_per_s,kl,clipfrac,learning_rate,log_std,ball_error,assist\n"


def _run(tmp_path, name, rows, success):
    """A progress.csv of (samples, episode length, ball error m) rows and an evaluation JSON with `success`."""
    (tmp_path / f"{name}.csv").write_text(HEADER + "".join(
        f"{i + 1},{s},0.5,{length},1000,0.01,0.1,5e-05,-2.9,{ball},0\n" for i, (s, length, ball) in enumerate(rows)))
    (tmp_path / f"{name}.json").write_text(json.dumps({"skills": [
        {"label": "031", "skill": "layup", "success": success, "accuracy": 0.25, "ball_error_mm": 300.0}]}))
    return f"{name}={tmp_path / name}.csv={tmp_path / name}.json"


def test_samples_add_up_across_runs_and_each_evaluation_sits_at_its_runs_end(tmp_path):
    a = _run(tmp_path, "a", [(1_000_000, 20, 0.1), (2_000_000, 30, 0.2)], 0.0)
    b = _run(tmp_path, "b", [(500_000, 40, 0.3), (3_000_000, 50, 0.15)], 0.5)
    s = plot_curve.lineage_series([a, b])
    assert s["ends"] == [2.0, 5.0]
    assert s["train"][1][1] == [2.5, 5.0]  # b's samples after a's 2 million
    assert s["train"][1][2] == pytest.approx([300.0, 150.0])  # m -> mm
    assert [(e[1], e[2], e[3]) for e in s["eval"]] == [(2.0, 0.0, 25.0), (5.0, 50.0, 25.0)]


def test_a_run_without_evaluation_is_drawn_and_a_bad_stage_is_one_line(tmp_path):
    a = _run(tmp_path, "a", [(1_000_000, 20, 0.1)], 0.0)
    s = plot_curve.lineage_series([a.rsplit("=", 1)[0]])
    assert s["eval"] == [] and s["ends"] == [1.0]
    with pytest.raises(plot_curve.UserError, match="expected NAME=PROGRESS.csv"):
        plot_curve.lineage_series([str(tmp_path / "a.csv")])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(plot_curve.UserError, match="bad.json: not the JSON"):
        plot_curve.lineage_series([f"a={tmp_path / 'a.csv'}={tmp_path / 'bad.json'}"])


def test_distill_panels_take_each_skill_from_the_runs_that_logged_it(tmp_path):
    w, i = tmp_path / "w.csv", tmp_path / "i.csv"
    w.write_text("iteration,samples,distill_mse,distill_mse_001,distill_mse_013\n1,100000,0.02,0.03,0.01\n"
                 "2,200000,0.01,0.02,0.005\n")
    i.write_text("iteration,samples,distill_mse,distill_mse_013\n1,100000,0.02,0.02\n")
    panels = plot_curve.distill_series("013,001", [f"W={w}", f"I={i}"])
    assert list(panels) == ["013", "001"]
    assert panels["013"] == [("W", [0.1, 0.2], [0.01, 0.005]), ("I", [0.1], [0.02])]
    assert panels["001"] == [("W", [0.1, 0.2], [0.03, 0.02])]
    with pytest.raises(plot_curve.UserError, match="no run logged skill 031"):
        plot_curve.distill_series("031", [f"W={w}"])
    with pytest.raises(plot_curve.UserError, match="expected skill labels of three digits"):
        plot_curve.distill_series("dribble", [f"W={w}"])
    ppo = tmp_path / "ppo.csv"  # a run without teachers
    ppo.write_text("iteration,samples,mean_reward\n1,1,0.5\n")
    with pytest.raises(plot_curve.UserError, match="no column distill_mse"):
        plot_curve.distill_series("013", [f"P={ppo}"])


def test_distill_joins_runs_that_continued_each_other(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("iteration,samples,distill_mse,distill_mse_013\n1,100000,0.02,0.04\n2,200000,0.02,0.03\n")
    b.write_text("iteration,samples,distill_mse,distill_mse_013\n1,50000,0.02,0.02\n")
    panels = plot_curve.distill_series("013", [f"Y={a}+{b}", f"A={a}"])
    assert panels["013"] == [("Y", [0.1, 0.2, 0.25], [0.04, 0.03, 0.02]), ("A", [0.1, 0.2], [0.04, 0.03])]
    with pytest.raises(plot_curve.UserError, match="missing.csv: no such file"):
        plot_curve.distill_series("013", [f"Y={a}+{tmp_path / 'missing.csv'}"])
