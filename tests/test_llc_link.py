"""A high-level policy names its skill policy by sha256 and by its path in the package (skillmimic.llc_link): the
shipped ones play with no argument but the task, a moved clone finds its own skill policy, a different one is one
line naming both files, and `python -m skillmimic.relink_hlc` refuses a skill policy that does not fit."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paths import ROOT
from scripts import importable_env, run_python
from skillmimic import checkpoint, cli
from skillmimic import model as M
from skillmimic.checkpoint import CheckpointError
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.llc_link import (PACKAGE, SHIPPED_LLC, file_sha256, find_llc, llc_reference, relink,
                                 shipped_hlc)
from skillmimic.motion import MotionSet
from skillmimic.policy import TASK_POLICY_FORMAT, SkillPolicy, policy_file

sys.path.insert(0, str(ROOT))
import play  # noqa: E402

TASKS = ("heading", "circling", "throwing", "scoring")
SHIPPED_SHA = file_sha256(SHIPPED_LLC)


def _tiny_llc(path, hand: str = "rigid", **extra):
    """A small skill policy of `hand` (random weights), written to `path`."""
    spec = M.load_spec(hand)
    policy = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, hand, spec.sha256)
    checkpoint.save_atomic(policy_file(policy.actor, policy.obs_norm, SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0,
                                       hand=hand, model_sha256=spec.sha256, **extra), path)
    return path


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("task", TASKS)
def test_shipped_high_level_policy_names_the_shipped_skill_policy(task):
    ckpt = checkpoint.load(shipped_hlc(task), TASK_POLICY_FORMAT, expect={"task": task})
    assert ckpt["llc_path"] == "assets/llc_policy.pt" and ckpt["llc_sha256"] == SHIPPED_SHA
    assert find_llc(shipped_hlc(task), ckpt) == SHIPPED_LLC


def test_reference_is_relative_inside_the_package_and_absolute_outside(tmp_path):
    assert llc_reference(SHIPPED_LLC) == {"llc_sha256": SHIPPED_SHA, "llc_path": "assets/llc_policy.pt"}
    outside = _tiny_llc(tmp_path / "llc.pt")
    assert llc_reference(outside)["llc_path"] == str(outside.resolve())
    assert find_llc("hlc.pt", {"llc": "/gone/llc.pt", **llc_reference(outside)}) == outside


def test_file_without_a_sha256_loads_its_recorded_path_unchecked(tmp_path):
    """High-level policies written before llc_sha256 was recorded: their `llc` path (or --llc), as before."""
    assert find_llc("old.pt", {"llc": "/root/exp2/llc.pt"}) == Path("/root/exp2/llc.pt")
    assert find_llc("old.pt", {"llc": "/root/exp2/llc.pt"}, tmp_path / "x.pt") == tmp_path / "x.pt"


def test_a_missing_skill_policy_says_where_it_looked(tmp_path):
    info = {"llc": str(tmp_path / "gone.pt"), "llc_path": str(tmp_path / "gone.pt"), "llc_sha256": "ab" * 32}
    with pytest.raises(CheckpointError, match=r"hlc.pt: needs the skill policy .*gone.pt \(sha256 abababababab\), "
                                              r"not found at .*gone.pt: pass --llc FILE"):
        find_llc("hlc.pt", info)


@pytest.fixture(scope="module")
def motions_cache():
    """play.py's clips by (folder, hand): all of BallPlay-M takes seconds to load, so once for the four tasks."""
    return {}


@pytest.mark.parametrize("task", TASKS)
def test_each_shipped_high_level_policy_plays_with_only_the_task(task, tmp_path, monkeypatch, motions_cache):
    """`python play.py --task TASK` needs nothing else: the shipped high-level policy and its skill policy."""
    def motions(source, hand):
        if (str(source), hand) not in motions_cache:
            motions_cache[str(source), hand] = MotionSet(source, hand=hand)
        return motions_cache[str(source), hand]

    players, make_player = [], play.make_player

    def keep_player(args):
        players.append(make_player(args))
        return players[-1]

    monkeypatch.setattr(play, "MotionSet", motions)
    monkeypatch.setattr(play, "make_player", keep_player)
    play.main(cli.parse(play.Args, ["--task", task, "--headless", "--steps", "3", "--width", "160", "--height", "90",
                                    "--save-images", str(tmp_path)]))
    player, = players
    assert player.hlc.info["task"] == task and player.hlc.info["llc_sha256"] == SHIPPED_SHA
    assert player.label in player.task_env.task.skills and player.hand == "rigid"
    assert len(list(tmp_path.glob("*.png"))) == 2  # steps 0 and 2 at 30 fps


def test_a_moved_clone_finds_its_own_skill_policy(tmp_path):
    """The package copied elsewhere and imported from there, run from a third folder: the shipped high-level policy
    finds the skill policy in the copy, by its path relative to the package."""
    clone = tmp_path / "clone"
    shutil.copytree(PACKAGE, clone / "skillmimic", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "eval.json"
    env = dict(os.environ, PYTHONPATH=str(clone))
    r = run_python("-m", "skillmimic.evaluate_task", "--task", "heading", "--episodes", "1", "--max-episode-steps", "3",
                   "--device", "cpu", "--motion-dir", ROOT / "data" / "BallPlay-M" / "layup", "--json-out", out,
                   cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["llc"] == str(clone / "skillmimic" / "assets" / "llc_policy.pt")
    assert result["checkpoint"] == str(clone / "skillmimic" / "assets" / "hlc_heading.pt")


def test_a_different_skill_policy_is_one_line_naming_both_files(tmp_path):
    other = _tiny_llc(tmp_path / "other.pt")
    r = run_python(ROOT / "play.py", "--task", "scoring", "--headless", "--steps", "1", "--llc", other, cwd=tmp_path,
                   timeout=300, env=importable_env())
    line = _one_line_error(r)
    assert (f"{shipped_hlc('scoring')}: needs the skill policy assets/llc_policy.pt (sha256 {SHIPPED_SHA[:12]}); "
            f"found {other} (sha256 {file_sha256(other)[:12]}), a different file: pass --llc FILE") in line, line


def test_relink_names_another_skill_policy_and_keeps_the_rest(tmp_path):
    moved = tmp_path / "llc.pt"
    shutil.copyfile(SHIPPED_LLC, moved)
    relink(shipped_hlc("throwing"), moved, tmp_path / "hlc.pt")
    old = checkpoint.load(shipped_hlc("throwing"), TASK_POLICY_FORMAT)
    new = checkpoint.load(tmp_path / "hlc.pt", TASK_POLICY_FORMAT)
    assert new["llc_path"] == str(moved.resolve()) and new["llc_sha256"] == SHIPPED_SHA and new["llc"] == str(moved)
    assert {k for k in old if k not in ("actor", "obs_norm") and old[k] != new[k]} == {"llc", "llc_path"}
    assert all(torch.equal(v, new["actor"][k]) for k, v in old["actor"].items())
    tiny = _tiny_llc(tmp_path / "tiny.pt")  # of the same hand: fits
    assert relink(tmp_path / "hlc.pt", tiny, tmp_path / "hlc.pt")["llc_sha256"] == file_sha256(tiny)


def test_relink_refuses_a_skill_policy_that_did_not_learn_its_skills(tmp_path):
    tiny = _tiny_llc(tmp_path / "tiny.pt", skill_labels=[1, 5])
    with pytest.raises(CheckpointError, match=r"tiny.pt: did not learn skill\(s\) 13, 11, 12, 31, which .* picks "
                                              r"\(scoring task\)"):
        relink(shipped_hlc("scoring"), tiny, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_relink_tool_refuses_a_skill_policy_of_another_hand(tmp_path):
    full = _tiny_llc(tmp_path / "full.pt", hand="full")
    out = tmp_path / "out.pt"
    env = importable_env()
    relink_hlc = ["-m", "skillmimic.relink_hlc", shipped_hlc("heading")]
    r = run_python(*relink_hlc, "--llc", full, "--out", out, cwd=tmp_path, timeout=300, env=env)
    line = _one_line_error(r)
    assert f"{full}: a skill policy of the full hand" in line and "trained on the rigid hand" in line, line
    assert not out.exists()
    r = run_python(*relink_hlc, "--out", out, cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 0 and "naming the skill policy assets/llc_policy.pt" in r.stdout, r.stderr
