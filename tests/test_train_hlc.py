"""train_hlc.py, the task evaluation and play.py --task, run as a user runs them (subprocesses, CPU), against a
small skill policy made here."""

import json
import math
import shutil
import sys

import pytest
import torch

from paths import ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT))
import train_hlc  # noqa: E402
from skillmimic import checkpoint  # noqa: E402
from skillmimic.envs.observations import SKILL_OBS_DIM  # noqa: E402
from skillmimic.llc_link import file_sha256  # noqa: E402
from skillmimic.policy import TASK_POLICY_FORMAT, SkillPolicy, policy_file, save_policy  # noqa: E402

FAST = ["--num-envs", "3", "--num-steps", "4", "--num-minibatches", "2", "--update-epochs", "2", "--device", "cpu",
        "--checkpoint-every", "1", "--hidden", "32", "32"]


def _run(*args, script="train_hlc.py"):
    return run_python(*(["-m"] if script.startswith("skillmimic.") else []), script, *args)


@pytest.fixture(scope="module")
def llc(tmp_path_factory):
    path = tmp_path_factory.mktemp("llc") / "llc.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, 156, (32,), math.pi / 2, 2.0), path)
    return path


@pytest.mark.parametrize("task,sticky", [("scoring", "0"), ("circling", "0.9")])
def test_two_iterations_write_checkpoint_and_policy_and_resume_exactly(tmp_path, llc, task, sticky):
    """Also with --sticky, whose actor reads each world's last skill: the environment's state carries it."""
    a, b = tmp_path / "a", tmp_path / "b"
    r = _run(*FAST, "--task", task, "--llc", str(llc), "--iterations", "3", "--run-dir", str(a), "--sticky", sticky)
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--task", task, "--llc", str(llc), "--iterations", "2", "--run-dir", str(b), "--sticky", sticky)
    assert r.returncode == 0, r.stderr
    policy = checkpoint.load(b / "policy.pt", TASK_POLICY_FORMAT)
    assert policy["task"] == task and policy["num_actions"] == len(policy["skills"])
    # The skill policy by content and place (outside the package: its absolute path), in both files.
    named = {"llc_sha256": file_sha256(llc), "llc_path": str(llc.resolve())}
    assert {k: policy[k] for k in named} == named
    assert {k: checkpoint.load(b / "checkpoint.pt", train_hlc.TRAIN_FORMAT)[k] for k in named} == named
    r = _run("--iterations", "3", "--device", "cpu", "--resume", str(b / "checkpoint.pt"))  # continues in b
    assert r.returncode == 0, r.stderr
    ca = checkpoint.load(a / "checkpoint.pt", train_hlc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_hlc.TRAIN_FORMAT)
    assert ca["iteration"] == cb["iteration"] == 3 and ca["global_step"] == cb["global_step"] == 3 * 3 * 4 * 3
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed run = uninterrupted run, to the bit (CPU)
    rows = (b / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,samples,mean_reward,success_rate") and len(rows) == 4


def test_tf32_is_a_speed_setting_a_resumed_run_takes_from_the_command_line(tmp_path, llc):
    r = _run(*FAST, "--task", "heading", "--llc", str(llc), "--iterations", "1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "r" / "checkpoint.pt"
    assert checkpoint.load(ckpt, train_hlc.TRAIN_FORMAT)["args"]["tf32"] is False
    r = _run("--iterations", "2", "--device", "cpu", "--tf32", "--resume", str(ckpt))
    assert r.returncode == 0, r.stderr
    assert checkpoint.load(ckpt, train_hlc.TRAIN_FORMAT)["args"]["tf32"] is True


def test_resume_runs_on_the_skill_policy_it_started_with(tmp_path, llc):
    """--resume finds the run's skill policy by its sha256: a different file at its path is one line naming both;
    the file moved elsewhere is found with --llc."""
    first = tmp_path / "llc.pt"
    shutil.copyfile(llc, first)
    r = _run(*FAST, "--task", "heading", "--llc", str(first), "--iterations", "1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    moved = tmp_path / "moved.pt"
    first.rename(moved)
    save_policy(SkillPolicy(SKILL_OBS_DIM, 156, (16,), math.pi / 2, 2.0), first)  # another skill policy at its path
    resume = ("--iterations", "2", "--device", "cpu", "--resume", str(tmp_path / "r" / "checkpoint.pt"))
    r = _run(*resume)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (f"checkpoint.pt: needs the skill policy {first.resolve()} (sha256 {file_sha256(moved)[:12]}); found "
            f"{first} (sha256 {file_sha256(first)[:12]}), a different file: pass --llc FILE") in r.stderr, r.stderr
    r = _run(*resume, "--llc", str(moved))
    assert r.returncode == 0, r.stderr
    policy = checkpoint.load(tmp_path / "r" / "policy.pt", TASK_POLICY_FORMAT)
    assert policy["iteration"] == 2 and policy["llc"] == str(moved) and policy["llc_sha256"] == file_sha256(moved)


def test_a_new_run_on_a_skill_policy_that_lacks_the_tasks_skills_is_refused_at_the_start(tmp_path):
    """As play.py refuses it for a trained high-level policy (skillmimic.llc_link.load_task_llc)."""
    policy = SkillPolicy(SKILL_OBS_DIM, 156, (16,), math.pi / 2, 2.0)
    path = tmp_path / "dribbles.pt"
    checkpoint.save_atomic(policy_file(policy.actor, policy.obs_norm, SKILL_OBS_DIM, 156, (16,), math.pi / 2, 2.0,
                                       hand="full", model_sha256=None, skill_labels=[9, 10, 11]), path)
    r = _run(*FAST, "--task", "scoring", "--llc", str(path), "--iterations", "1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"--llc: {path}: did not learn skill(s)" in r.stderr and "which the scoring task picks" in r.stderr
    assert not (tmp_path / "r").exists()


def test_config_file(tmp_path, llc):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"task: throwing\nllc: {llc}\nthrowing:\n  height: 2.0\n")
    r = _run(*FAST, "--config", str(cfg), "--iterations", "1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    policy = checkpoint.load(tmp_path / "r" / "policy.pt", TASK_POLICY_FORMAT)
    assert policy["task"] == "throwing" and policy["task_config"]["height"] == 2.0
    saved = checkpoint.load(tmp_path / "r" / "checkpoint.pt", train_hlc.TRAIN_FORMAT)["args"]
    assert saved["throwing"]["height"] == 2.0 and not {"heading", "circling", "scoring"} & set(saved)
    # (Wrong files for --resume and --llc are refused in one line: test_user_errors.py.)


def test_task_evaluation_and_play(tmp_path, llc):
    r = _run(*FAST, "--task", "heading", "--llc", str(llc), "--iterations", "1", "--run-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "eval.json"
    r = _run("--checkpoint", str(tmp_path / "policy.pt"), "--episodes", "3", "--max-episode-steps", "9", "--device",
             "cpu", "--json-out", str(out), script="skillmimic.evaluate_task")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["task"] == "heading" and res["episodes"] == 3
    assert abs(res["success"] + res["fell"] + res["timed_out"] - 1.0) < 1e-6 and res["mean_episode_steps"] <= 9
    video = tmp_path / "task.mp4"
    r = _run("--task", "heading", "--checkpoint", str(tmp_path / "policy.pt"), "--headless", "--steps", "12",
             "--fps", "30", "--video", str(video), "--width", "160", "--height", "120", script="play.py")
    assert r.returncode == 0, r.stderr
    assert video.stat().st_size > 0 and "wrote" in r.stdout
    r = _run("--task", "scoring", "--checkpoint", str(tmp_path / "policy.pt"), "--headless", "--steps", "1",
             script="play.py")
    assert r.returncode != 0 and "made for task=heading" in r.stderr


def test_sticky_is_recorded_and_followed_by_evaluation_and_the_trace_tool_and_bad_values_are_refused(tmp_path, llc):
    """--sticky (skillmimic.sticky): the exported policy records it and carries the learned bias; evaluate_task,
    tools/scripted_task.py --hlc and play.py play it (it reads the last skill); 1 is refused in one line before
    anything runs."""
    r = _run(*FAST, "--task", "throwing", "--llc", str(llc), "--iterations", "1", "--sticky", "0.97", "--run-dir",
             str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    policy = checkpoint.load(tmp_path / "r" / "policy.pt", TASK_POLICY_FORMAT)
    assert policy["sticky"] == 0.97 and "keep_bias" in policy["actor"] and policy["actor"]["net.0.weight"].shape[1] \
        == policy["num_obs"] + policy["num_actions"]  # the observation, then the last skill's one-hot
    r = _run("--checkpoint", str(tmp_path / "r" / "policy.pt"), "--episodes", "2", "--max-episode-steps", "6",
             "--device", "cpu", script="skillmimic.evaluate_task")
    assert r.returncode == 0, r.stderr
    r = _run("--hlc", tmp_path / "r" / "policy.pt", "--episodes", "2", "--max-episode-steps", "6",
             script=str(ROOT / "tools" / "scripted_task.py"))
    assert r.returncode == 0 and r.stdout.startswith("throwing, hlc"), r.stderr
    r = _run("--task", "throwing", "--checkpoint", str(tmp_path / "r" / "policy.pt"), "--headless", "--steps", "4",
             script="play.py")
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--task", "throwing", "--llc", str(llc), "--sticky", "1", "--run-dir", str(tmp_path / "bad"))
    assert r.returncode == 2 and r.stderr.strip() == "error: --sticky 1.0: must be a probability in [0, 1) of " \
        "keeping the previous skill (0: off)", r.stderr
    assert not (tmp_path / "bad").exists()
