"""Teachers fed the reference laid onto the humanoid's own position (train_llc.py --anchor-reference,
skillmimic.envs.reference_obs.anchor): the features no longer say where the reference is, only its pose, phase and
the ball to reach; a run trains such a teacher and its file says so; every reader (the distillation's teachers, the
evaluation) feeds it the reference so; the flag without a teacher, and such a file continued without the flag, are
refused in one line (CPU)."""

import sys

import pytest
import torch

from paths import ROOT
from scripts import run_python
from skillmimic import checkpoint, rotations
from skillmimic import model as M
from skillmimic.distill import Teachers
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, anchor, reference_obs, seen_by
from skillmimic.policy import POLICY_FORMAT, SkillPolicy, load_policy, save_policy

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "32", "32", "--warm-start-steps", "5",
        "--critic-warmup-iterations", "1", "--actor-prime-iterations", "0", "--critic-reference",
        "--actor-reference"]
BALL = M.NUM_BODIES * 3  # the reference ball's first feature


def _run(*args):
    return run_python("train_llc.py", *args)


def _features(root_shift: torch.Tensor, contact: torch.Tensor) -> torch.Tensor:
    """reference_obs of one reference frame seen from humanoids standing root_shift (N, 2) apart horizontally,
    turned alike, with the reference's contact labels `contact` (N,)."""
    n = len(root_shift)
    gen = torch.Generator().manual_seed(0)
    bodies = torch.randn(1, M.NUM_BODIES, 3, generator=gen).expand(n, -1, -1)  # (N, 53, 3) the same frame
    ball, ball_v = torch.randn(1, 3, generator=gen).expand(n, -1), torch.randn(1, 3, generator=gen).expand(n, -1)
    root = torch.tensor([[0.4, -0.3, 0.9]]).repeat(n, 1)
    root[:, :2] += root_shift
    quat = rotations.yaw_quat(torch.full((n,), 0.7))  # (N, 4) wxyz
    return reference_obs(root, quat, bodies, ball, ball_v, contact, torch.rand(1, 2, generator=gen).expand(n, -1))


def test_anchored_features_do_not_say_where_the_reference_is():
    shift = torch.tensor([[0.0, 0.0], [0.3, -0.2], [-1.5, 0.8], [2.0, 2.0]])
    held = _features(shift, torch.ones(4))
    plain = held.clone()
    a = anchor(held)
    assert torch.equal(held, plain)  # a copy: the caller's features stay as they were
    assert not torch.allclose(held[0], held[1])  # plain: the humanoid's place relative to the reference shows
    for k in range(1, 4):  # anchored: wherever the humanoid stands, the same features (the held ball with them)
        assert torch.allclose(a[k], a[0], atol=1e-5), k
    assert a[:, :2].abs().max() < 1e-6  # the reference pelvis under the humanoid's
    heights = torch.arange(2, BALL, 3)
    assert torch.equal(a[:, heights], held[:, heights]) and torch.equal(a[:, BALL + 2 :], held[:, BALL + 2 :])
    free = _features(shift, torch.zeros(4))  # before a catch the ball stays where it is: the target to reach
    assert torch.equal(anchor(free)[:, BALL : BALL + 2], free[:, BALL : BALL + 2])


def _teacher(path, anchored: bool) -> SkillPolicy:
    spec = M.load_spec("rigid")
    torch.manual_seed(4)
    policy = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (16,), 1.0, 2.0, hand="rigid", model_sha256=spec.sha256,
                         num_reference=REFERENCE_OBS_DIM)
    policy.obs_norm.update(torch.randn(64, SKILL_OBS_DIM))
    policy.ref_norm.update(3.0 * torch.randn(64, REFERENCE_OBS_DIM))
    policy.reference_anchor = anchored
    save_policy(policy, path)
    saved = checkpoint.load(path, POLICY_FORMAT)
    saved["skill_labels"] = [31]
    checkpoint.save_atomic(saved, path)
    return policy


def test_a_file_records_it_and_its_readers_feed_it_the_anchored_reference(tmp_path):
    _teacher(tmp_path / "a.pt", True)
    _teacher(tmp_path / "p.pt", False)
    assert checkpoint.load(tmp_path / "a.pt", POLICY_FORMAT)["reference_anchor"] is True
    assert "reference_anchor" not in checkpoint.load(tmp_path / "p.pt", POLICY_FORMAT)  # as files were before
    anchored = load_policy(tmp_path / "a.pt", reference=REFERENCE_OBS_DIM)
    plain = load_policy(tmp_path / "p.pt", reference=REFERENCE_OBS_DIM)
    assert anchored.reference_anchor and not plain.reference_anchor
    ref = _features(torch.tensor([[0.5, 0.5], [-0.4, 0.1], [0.0, 0.0]]), torch.ones(3))
    assert torch.equal(seen_by(anchored, ref), anchor(ref)) and torch.equal(seen_by(plain, ref), ref)
    obs = torch.randn(3, SKILL_OBS_DIM)
    for path, policy in (("a.pt", anchored), ("p.pt", plain)):
        teachers = Teachers((str(tmp_path / path),), SKILL_OBS_DIM, "rigid", torch.device("cpu"), run_labels=[31],
                            action_scale=1.0, reference=lambda: ref)
        mu, _ = teachers.means(obs, torch.tensor([31, 31, 31]))
        assert torch.allclose(mu, policy(obs, seen_by(policy, ref)))
    # A file whose record is not true or false: one line.
    saved = checkpoint.load(tmp_path / "a.pt", POLICY_FORMAT)
    saved["reference_anchor"] = "yes"
    checkpoint.save_atomic(saved, tmp_path / "bad.pt")
    with pytest.raises(checkpoint.CheckpointError, match="reference_anchor 'yes' is not true or false"):
        load_policy(tmp_path / "bad.pt", reference=REFERENCE_OBS_DIM)


def test_a_run_trains_an_anchored_teacher_the_evaluation_reads_it_and_a_plain_run_cannot_continue_it(tmp_path):
    r = _run(*FAST, "--anchor-reference", "--iterations", "2", "--run-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "a" / "policy.pt"
    assert checkpoint.load(path, POLICY_FORMAT)["reference_anchor"] is True
    assert checkpoint.load(tmp_path / "a" / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["anchor_reference"] is True
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", path, "--episodes", "1", "--horizon", "3", "--device",
                   "cpu", "--backend", "mujoco", timeout=300)
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--iterations", "1", "--run-dir", tmp_path / "plain", "--init-from", path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --init-from {path}: its actor sees the reference laid onto its own position; continue it with "
        "--anchor-reference"]
    assert not (tmp_path / "plain" / "checkpoint.pt").exists()


def test_the_flag_without_a_teacher_is_refused_before_any_work(tmp_path):
    r = _run(*FAST[:-1], "--anchor-reference", "--iterations", "1", "--run-dir", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --anchor-reference needs --actor-reference (it lays the reference a teacher's actor sees)"]
    assert not (tmp_path / "run").exists()
