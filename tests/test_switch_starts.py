"""Switch starts (EnvConfig.switch_starts, skillmimic/envs/switch_starts.py): the nearest-frame table, the
alignment, the environment's starts and rewards with them, and a tiny training run."""

import math
import shutil
import sys
from types import SimpleNamespace

import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python
from starts import todays_starts
from skillmimic import checkpoint, rotations, skills
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM
from skillmimic.envs.switch_starts import Alignment, SwitchStarts, nearest_frames, pose_features
from skillmimic.errors import UserError
from skillmimic.evaluate import evaluation_config
from skillmimic.motion import MotionSet
from skillmimic.policy import load_policy

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402


@pytest.fixture(scope="module")
def two_skills():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips)


def _env(motions, share, n=6, seed=1, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", switch_starts=SwitchStarts(share), **kw), motions, n, "cpu",
                        seed=seed)


def _ref_actions(env):
    rows = env.motions.rows(env.motion_ids, env.frame_ids + 1)
    return env.motions.table.dof_pos[rows] / env.cfg.action_scale


def _turn(yaw: float, n: int) -> torch.Tensor:
    return rotations.quat_from_expmap(torch.tensor([0.0, 0.0, yaw])).expand(n, 4)


# --- the nearest-frame table ------------------------------------------------------------------------------------
def test_pose_feature_ignores_where_the_humanoid_stands_and_which_way_it_faces(two_skills):
    t = two_skills.table
    a = pose_features(t.body_pos, t.body_quat, t.ball_pos)
    n = t.body_pos.shape[0]
    turn, shift = _turn(2.3, n), torch.tensor([4.0, -7.0, 0.0])
    moved = pose_features(rotations.quat_rotate(turn[:, None].expand(n, 53, 4), t.body_pos) + shift,
                          rotations.quat_mul(turn[:, None].expand(n, 53, 4), t.body_quat),
                          rotations.quat_rotate(turn, t.ball_pos) + shift)
    assert a.shape == (n, 53 * 3) and torch.allclose(a, moved, atol=1e-4)


def test_nearest_frames_map_a_row_to_itself_in_its_label_and_to_a_start_of_the_other(two_skills):
    env = _env(two_skills, 0.5)
    near, rows = env.nearest, env.label_rows  # (F, 2), (2, R)
    assert near.shape == (two_skills.num_frames, 2)
    starts = [set(r[r >= 0].tolist()) for r in rows]
    own = env.row_label  # (F,) label index of each row
    for lab in range(2):
        assert set(near[:, lab].tolist()) <= starts[lab]  # always a start row (never a clip's last frame) of lab
        mine = torch.tensor(sorted(starts[lab]))
        assert torch.equal(near[mine, lab], mine)  # a start row is its own nearest in its label
        assert (own[near[:, lab]] == lab).all()
    # A clip's last frame maps, in its own label, to a start row of that label (not to itself).
    last = two_skills.starts[0] + two_skills.lengths[0] - 1
    assert int(near[last, own[last]]) != int(last) and int(near[last, own[last]]) in starts[int(own[last])]
    # The table agrees with a brute-force search, chunked or not.
    feat = pose_features(two_skills.table.body_pos, two_skills.table.body_quat, two_skills.table.ball_pos)
    assert torch.equal(nearest_frames(feat, rows, chunk=37), near)
    other = torch.tensor(sorted(starts[1]))
    exact = torch.cdist(feat[:40], feat[other], compute_mode="donot_use_mm_for_euclid_dist")  # differences
    brute = other[exact.argmin(1)]
    assert torch.equal(near[:40, 1], brute)


# --- the alignment ----------------------------------------------------------------------------------------------
def test_alignment_lays_the_source_root_onto_the_destination_and_keeps_relative_poses(two_skills):
    t, n = two_skills.table, 5
    g = torch.tensor([3, 40, 170, 250, 400])  # source rows (the followed clip's frame)
    f = torch.tensor([100, 7, 300, 12, 200])  # destination rows (the start)
    al = Alignment.onto(t.root_pos[g], t.root_quat[g], t.root_pos[f], t.root_quat[f])
    assert torch.allclose(al.point(t.root_pos[g])[:, :2], t.root_pos[f][:, :2], atol=1e-5)
    assert torch.allclose(al.point(t.root_pos[g])[:, 2], t.root_pos[g][:, 2])  # heights kept
    moved_heading = rotations.heading(al.orientation(t.root_quat[g]))
    assert torch.allclose(rotations.wrap_angle(moved_heading - rotations.heading(t.root_quat[f])), torch.zeros(n),
                          atol=1e-5)
    # The pose relative to the root, in the heading frame, is the same after the move.
    before = pose_features(t.body_pos[g], t.body_quat[g], t.ball_pos[g])
    after = pose_features(al.point(t.body_pos[g]), al.orientation(t.body_quat[g]), al.point(t.ball_pos[g]))
    assert torch.allclose(before, after, atol=1e-4)
    assert torch.allclose(al.vector(t.ball_vel[g]).norm(dim=-1), t.ball_vel[g].norm(dim=-1), atol=1e-5)
    # Onto itself, and the identity, leave every quantity as it was (the identity to the bit).
    same = Alignment.onto(t.root_pos[f], t.root_quat[f], t.root_pos[f], t.root_quat[f])
    assert torch.allclose(same.point(t.body_pos[f]), t.body_pos[f], atol=1e-5)
    assert torch.allclose(same.orientation(t.body_quat[f]), t.body_quat[f], atol=1e-6)
    ident = Alignment.identity(n)
    assert torch.equal(ident.point(t.body_pos[f]), t.body_pos[f])
    assert torch.equal(ident.orientation(t.body_quat[f]), t.body_quat[f])
    assert torch.equal(ident.vector(t.ball_vel[f]), t.ball_vel[f])


# --- the environment --------------------------------------------------------------------------------------------
def test_switch_starts_begin_in_the_drawn_state_with_the_other_label_and_the_aligned_reference(two_skills):
    plain, env = _env(two_skills, 0.0), _env(two_skills, 1.0)
    plain.reset()  # the same generator draws the same (X, f) first
    obs = env.reset()
    X, f = plain.motion_ids, plain.frame_ids
    assert env.switched.all()
    a, b = two_skills.labels[X], two_skills.labels[env.motion_ids]
    assert (a != b).all()
    assert torch.equal(obs[:, OBS_DIM:], skills.one_hot(b))  # the observation carries label b
    qpos, qvel = two_skills.state(X, f)
    assert torch.equal(env.sim.qpos, qpos) and torch.equal(env.sim.qvel, qvel)  # in X's state at f
    assert torch.equal(env.start_seg, plain.start_seg)  # filed under the row drawn (and left out of the counts)
    g = two_skills.rows(env.motion_ids, env.frame_ids)
    assert torch.equal(g, env.nearest[two_skills.rows(X, f), env.row_label[g]])
    # The first step, the reference's next hinge angles as actions: the body-position term against the aligned
    # reference is far above what the clip's own placement would give (the alignment reaches the reward).
    unaligned = _env(two_skills, 1.0)
    unaligned.reset()
    unaligned.align = Alignment.identity(unaligned.num_envs)
    _, _, _, _, info = env.step(_ref_actions(env))
    _, _, fell_raw, _, raw = unaligned.step(_ref_actions(unaligned))
    p, p_raw = info["terms"]["p"], raw["terms"]["p"]
    assert (p > 0.1).all() and p.mean() > 0.4 and (p_raw < 1e-3).all(), (p, p_raw)
    # and the drift too: unaligned, every episode would end as a fall (fall_distance 0.5 m) on its first step
    assert (info["drift"] < 0.3).all() and (raw["drift"] > env.cfg.fall_distance).all() and fell_raw.all()
    # the log compares how switch episodes and the others fare: every world switched, all fell unaligned
    assert float(raw["stats"]["fall_rate_switched"]) == 1.0 and float(raw["stats"]["fall_rate_plain"]) == 0.0
    assert "fall_rate_switched" not in plain.step(_ref_actions(plain))[4]["stats"]


def test_share_zero_is_todays_start_and_random_stream(two_skills):
    env = _env(two_skills, 0.0, n=8)
    env.reset()
    assert not env.switching and not hasattr(env, "nearest") and not env.switched.any()
    _, mids, fids, gen = todays_starts(env, two_skills, 8)  # sample_starts as it was, by hand
    assert torch.equal(env.motion_ids, mids) and torch.equal(env.frame_ids, fids)
    assert torch.equal(env.gen.get_state(), gen.get_state())  # nothing else drawn
    # One label: on, but nothing to switch to, so nothing built and nothing drawn.
    one = ImitationEnv(EnvConfig(backend="mujoco", switch_starts=SwitchStarts(1.0)), MotionSet(DATA / "layup"), 2,
                       "cpu", seed=1)
    assert not one.switching


def test_given_starts_and_the_evaluation_never_switch(two_skills):
    env = _env(two_skills, 1.0, n=3)
    env.reset()
    assert env.switched.all()
    mids, fids = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7])
    env.reset_envs(torch.arange(3), mids, fids)  # the evaluation's, play.py's and the warm start's way
    assert torch.equal(env.motion_ids, mids) and torch.equal(env.frame_ids, fids) and not env.switched.any()
    assert torch.equal(env.align.turn, Alignment.identity(3).turn) and not env.align.shift.any()
    policy = SimpleNamespace(action_scale=math.pi / 2, action_clip=2.0, hand="full", physics=EnvConfig().physics,
                             ball_starts=False, history_steps=0, num_reference=0, info={})
    assert evaluation_config(policy, 5, "mujoco").switch_starts == SwitchStarts()


@pytest.mark.parametrize("share", [1.5, -0.1, float("nan")])
def test_bad_share_is_refused_in_one_line(share):
    with pytest.raises(UserError, match=r"--env.switch-starts.share .*: must be within \[0, 1\]") as e:
        EnvConfig(switch_starts=SwitchStarts(share))
    assert "\n" not in str(e.value)


def test_checkpoint_round_trip_keeps_the_transforms(two_skills):
    a = _env(two_skills, 0.5, n=6, seed=3)
    a.reset()
    a.step(_ref_actions(a))
    state = a.state_dict()
    b = _env(two_skills, 0.5, n=6, seed=9)
    b.reset()
    b.load_state_dict(state)
    assert torch.equal(a.switched, b.switched) and a.switched.any()
    assert torch.equal(a.align.turn, b.align.turn) and torch.equal(a.align.shift, b.align.shift)
    for _ in range(3):
        ra, rb = a.step(_ref_actions(a)), b.step(_ref_actions(b))
        assert torch.equal(ra[1], rb[1]) and torch.equal(ra[0], rb[0])
    assert torch.equal(a.switched, b.switched) and torch.equal(a.align.shift, b.align.shift)


def test_a_tiny_training_run_with_switch_starts(tmp_path):
    both = tmp_path / "two"
    for name in ("layup", "run"):
        shutil.copytree(DATA / name, both / name)
    r = run_python(ROOT / "train_llc.py", "--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2",
                   "--update-epochs", "2", "--device", "cpu", "--hidden", "64", "64", "--warm-start-steps", "0",
                   "--iterations", "2", "--motion-dir", both, "--env.switch-starts.share", "0.5", "--run-dir",
                   tmp_path / "run", env=importable_env())
    assert r.returncode == 0, r.stderr
    assert "2/2" in r.stdout
    saved = checkpoint.load(tmp_path / "run" / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["env"]
    assert saved["switch_starts"] == {"share": 0.5}  # a resumed run keeps it; the policy file need not
    assert "switch_starts" not in load_policy(tmp_path / "run" / "policy.pt", num_obs=SKILL_OBS_DIM).info
