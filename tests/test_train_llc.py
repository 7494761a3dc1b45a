"""train_llc.py: GAE by hand, and the script run as a user runs it (a subprocess, a few environments, CPU)."""

import json
import subprocess
import sys

import pytest
import torch

from paths import ROOT

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint  # noqa: E402
from skillmimic.envs.imitation import ImitationEnv  # noqa: E402
from skillmimic.policy import POLICY_FORMAT  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20"]


def _run(*args):
    r = subprocess.run([sys.executable, "train_llc.py", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    return r


def test_gae_by_hand_with_a_fall_and_a_time_out():
    g, lam = 0.9, 0.5
    # One environment, three steps: a fall ends the first episode at t=0, a time-out the second at t=2.
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    dones = torch.tensor([[1.0], [0.0], [1.0]])
    timeouts = torch.tensor([[0.0], [0.0], [1.0]])
    next_value = torch.tensor([4.0])
    adv, ret = train_llc.gae(rewards, values, dones, timeouts, next_value, g, lam)
    # t=2: time-out, reward bootstrapped with gamma * V(s_2): r = 3 + 0.9 * 2 = 4.8; no next value.
    d2 = 4.8 - 2.0
    # t=1: delta = 2 + 0.9 * 2.0 - 1.0 = 2.8; advantage = 2.8 + 0.9 * 0.5 * d2.
    d1 = 2.0 + 0.9 * 2.0 - 1.0
    a1 = d1 + g * lam * d2
    # t=0: a fall: no bootstrap at all.
    a0 = 1.0 - 0.5
    assert torch.allclose(adv.flatten(), torch.tensor([a0, a1, d2]))
    assert torch.allclose(ret, adv + values)


def test_two_iterations_write_checkpoint_and_policy_and_resume_exactly(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = _run(*FAST, "--iterations", "3", "--run-dir", str(a))
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--iterations", "2", "--run-dir", str(b))
    assert r.returncode == 0, r.stderr
    assert "2/2" in r.stdout
    policy = checkpoint.load(b / "policy.pt", POLICY_FORMAT)
    assert (b / "policy.pt").stat().st_size < 16 * 2**20 and policy["num_actions"] == 156
    assert checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)["iteration"] == 2
    r = _run(*FAST, "--iterations", "3", "--run-dir", str(b), "--resume", str(b / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    ca = checkpoint.load(a / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ca["iteration"] == cb["iteration"] == 3 and ca["global_step"] == cb["global_step"]
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed run = uninterrupted run, to the bit (CPU)
    assert list((b / "tb").iterdir())


def test_resume_keeps_the_run_settings_and_refuses_another_model(tmp_path):
    r = _run(*FAST, "--iterations", "1", "--run-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    # Resumed with other network flags: the run keeps its own (64, 64) network and continues.
    wider = [a if a != "64" else "32" for a in FAST]
    r = _run(*wider, "--iterations", "2", "--run-dir", str(tmp_path), "--resume", str(tmp_path / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    ckpt = checkpoint.load(tmp_path / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ckpt["iteration"] == 2 and ckpt["hidden"] == [64, 64]
    # A checkpoint of a model with another observation: one clear line.
    ckpt["num_obs"] = 10
    checkpoint.save_atomic(ckpt, tmp_path / "other.pt")
    r = _run(*FAST, "--iterations", "3", "--resume", str(tmp_path / "other.pt"))
    assert r.returncode != 0
    assert f"other.pt: made for num_obs=10, this model has num_obs={ImitationEnv.num_obs}" in \
        r.stderr.strip().splitlines()[-1]
    r = _run(*FAST, "--iterations", "2", "--resume", str(tmp_path / "policy.pt"))
    assert r.returncode != 0 and "expected a 'skillmimic-llc-train/1'" in r.stderr
    # A checkpoint of another MJCF of its hand (the model file changed since): one clear line.
    ckpt["num_obs"] = ImitationEnv.num_obs
    ckpt["model_sha256"] = "0" * 64
    checkpoint.save_atomic(ckpt, tmp_path / "other.pt")
    r = _run(*FAST, "--iterations", "3", "--resume", str(tmp_path / "other.pt"))
    assert r.returncode != 0
    assert "other.pt: trained on the full hand (156 actions, MJCF sha256 000000000000); this model is the full hand" \
        in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("payload", [b"not a checkpoint", None])
def test_unreadable_checkpoint(tmp_path, payload):
    path = tmp_path / "c.pt"
    if payload is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(payload)
    with pytest.raises(checkpoint.CheckpointError, match=str(path)):
        checkpoint.load(path, train_llc.TRAIN_FORMAT)


def test_environment_count_and_device_have_one_flag_each():
    r = _run("--env.num-envs", "5", "--iterations", "1")
    assert r.returncode != 0 and "--num-envs and --device" in r.stderr


def test_kept_policies_make_a_learning_curve(tmp_path):
    """On the rigid hand (--env.hand): the policies record it, and the evaluation runs them on it."""
    r = _run(*FAST, "--iterations", "2", "--run-dir", str(tmp_path), "--keep-policies", "--env.hand", "rigid")
    assert r.returncode == 0, r.stderr
    kept = sorted(p.name for p in (tmp_path / "policies").iterdir())
    assert kept == ["iter_000001.pt", "iter_000002.pt"]
    policy = checkpoint.load(tmp_path / "policies" / kept[0], POLICY_FORMAT)
    assert policy["hand"] == "rigid" and policy["num_actions"] == 66 and len(policy["model_sha256"]) == 64
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,samples,") and [r.split(",")[:2] for r in lines[1:]] == [["1", "32"],
                                                                                                   ["2", "64"]]
    out = tmp_path / "curve.json"
    r = subprocess.run([sys.executable, "-m", "skillmimic.evaluate", "--checkpoint", str(tmp_path / "policies"),
                        "--episodes", "2", "--horizon", "5", "--device", "cpu", "--json-out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    curve = json.loads(out.read_text())["curve"]
    assert [c["iteration"] for c in curve] == [1, 2]
    assert [c["samples"] for c in curve] == [4 * 8, 2 * 4 * 8]
    assert curve[0]["skills"][0]["label"] == "031"


def test_evaluating_an_empty_folder_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "skillmimic.evaluate", "--checkpoint", str(tmp_path), "--device",
                        "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no policy files" in r.stderr
