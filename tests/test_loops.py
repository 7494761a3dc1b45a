"""Clips that loop (EnvConfig.loops, skillmimic/envs/loops.py): the loop frame, the reference carried on past the
last frame, the episode's end, the critic's reference, a resumed run, and the flags' refusals."""

import math
import pytest
import torch

from paths import DATA
from scripts import run_python
from skillmimic import rotations
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.loops import Loops, LoopTable, compose, follow
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.envs.switch_starts import Alignment
from skillmimic.errors import UserError
from skillmimic.evaluate import evaluation_config
from skillmimic.motion import MotionSet
from skillmimic.policy import load_policy


@pytest.fixture(scope="module")
def dribble():
    return MotionSet(DATA / "run")  # label 13: 3 clips (131, 81 and 81 frames)


@pytest.fixture(scope="module")
def mixed():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips)


def _env(motions, labels=(13,), n=3, blend=10, **kw):
    kw = {"fall_distance": math.inf, "max_episode_steps": 400, "auto_reset": False, **kw}
    return ImitationEnv(EnvConfig(backend="mujoco", loops=Loops(labels, blend_frames=blend), **kw), motions, n, "cpu",
                        seed=3)


def _train(*args):
    return run_python("train_llc.py", *args)


def _ref_root(env):
    """The reference's pelvis position each world follows now, aligned. (N, 3)"""
    rows = env.motions.rows(env.motion_ids, env.frame_ids)
    return env.align.point(env.motions.table.body_pos[rows][:, 0])


def test_the_loop_frame_is_an_earlier_frame_like_the_last(dribble):
    table = LoopTable.build(dribble, Loops((13,), min_frames=30), "cpu")
    assert table.looped.all()
    for c in range(dribble.num_motions):
        last = int(dribble.lengths[c]) - 1
        j = int(table.frame[c])
        assert 0 <= j <= last - 30
        t, s = dribble.table, int(dribble.starts[c])
        # the ball at the loop frame is about where it is at the last frame, relative to the pelvis's height
        dz = (t.ball_pos[s + j, 2] - t.body_pos[s + j, 0, 2]) - (t.ball_pos[s + last, 2] - t.body_pos[s + last, 0, 2])
        assert abs(float(dz)) < 0.2
        # the move lays the loop frame's root onto the last frame's (on the floor; heights kept)
        moved = Alignment(table.move.turn[c : c + 1], table.move.shift[c : c + 1]).point(t.root_pos[s + j][None])[0]
        assert torch.allclose(moved[:2], t.root_pos[s + last, :2], atol=1e-4)
    # a label not looped, or a loop longer than a clip, loops nothing
    assert not LoopTable.build(dribble, Loops((31,)), "cpu").looped.any()
    assert not LoopTable.build(dribble, Loops((13,), min_frames=200), "cpu").looped.any()


def test_compose_applies_the_inner_transform_first():
    a = Alignment(rotations.yaw_quat(torch.tensor([0.7])), torch.tensor([[1.0, -2.0, 0.0]]))
    b = Alignment(rotations.yaw_quat(torch.tensor([-1.9])), torch.tensor([[0.3, 0.5, 0.0]]))
    x = torch.tensor([[0.4, 1.1, 0.9]])
    assert torch.allclose(compose(a, b).point(x), a.point(b.point(x)), atol=1e-6)


def test_follow_reads_past_the_last_frame_from_the_loop(dribble):
    table = LoopTable.build(dribble, Loops((13,)), "cpu")
    ids = torch.tensor([1, 1, 1])
    last = dribble.lengths[ids] - 1
    ident = Alignment.identity(3)
    frames, al, looped = follow(table, ids, torch.tensor([40, 80, 81]), last, ident)
    j = int(table.frame[1])
    assert frames.tolist() == [40, 80, j + 1] and looped.tolist() == [False, False, True]
    assert torch.equal(al.turn[:2], ident.turn[:2]) and torch.equal(al.shift[:2], ident.shift[:2])  # untouched
    assert torch.allclose(al.turn[2], table.move.turn[1]) and torch.allclose(al.shift[2], table.move.shift[1])


def test_an_episode_goes_on_past_a_looped_clip_with_its_reference_carried_on(dribble):
    env = _env(dribble, steps_after_clip=0, blend=0)
    env.reset()
    ids, start = torch.tensor([1, 1, 0]), torch.tensor([70, 70, 120])
    env.reset_envs(torch.arange(3), ids, start)
    last = dribble.lengths[ids] - 1
    table = env.loop_table
    prev = _ref_root(env)
    seen_loop = torch.zeros(3, dtype=torch.bool)
    for k in range(1, 200):  # more than two loops of the shortest clip
        _, _, _, truncated, _ = env.step(torch.zeros(3, env.num_actions))
        assert not truncated.any(), "a looped clip has no end before max_episode_steps"
        assert (env.frame_ids <= last).all()
        now = _ref_root(env)
        assert ((now - prev)[:, :2].norm(dim=-1) < 0.25).all(), f"the reference jumps at step {k}"
        prev = now
        seen_loop |= env.frame_ids < start
    assert seen_loop.all()
    # the loop frame's successor was followed right after the last frame
    env.reset_envs(torch.arange(3), ids, last)
    env.step(torch.zeros(3, env.num_actions))
    assert env.frame_ids.tolist() == (table.frame[ids] + 1).tolist()


def test_loops_leave_other_clips_and_runs_without_them_as_they_were(mixed):
    plain = ImitationEnv(EnvConfig(backend="mujoco", fall_distance=math.inf, max_episode_steps=400, auto_reset=False),
                         mixed, 2, "cpu", seed=3)
    looped = _env(mixed, n=2)
    for env in (plain, looped):
        env.reset()
        env.reset_envs(torch.arange(2), torch.tensor([0, 0]), torch.tensor([150, 150]))  # the layup: 161 frames
    ends = []
    for env in (plain, looped):
        out = [env.step(torch.zeros(2, env.num_actions)) for _ in range(12)]
        ends.append(torch.stack([o[3] for o in out]))
    assert torch.equal(ends[0], ends[1]) and ends[0].any(), "the layup still ends at its last frame"
    assert torch.equal(plain.sim.qpos, looped.sim.qpos)


def test_the_critics_reference_follows_the_loop(dribble):
    env, plain = _env(dribble, steps_after_clip=150, blend=0), _env(dribble, labels=(), steps_after_clip=150)
    ids = torch.tensor([1, 1, 2])
    last = dribble.lengths[ids] - 1
    for e in (env, plain):
        e.reset()
        e.reset_envs(torch.arange(3), ids, last)  # the next step leads past the last frame
    j = env.loop_table.frame[ids]
    ref = env.reference_obs()
    # the frame after the last is the loop frame's successor, laid onto the last frame
    rows = dribble.starts[ids] + j + 1
    move = Alignment(env.loop_table.move.turn[ids], env.loop_table.move.shift[ids])
    t, s = dribble.table, env.sim
    inv = rotations.heading_inverse(s.body_quat_w[:, 0])
    bodies = rotations.quat_rotate(inv[:, None].expand(3, 53, 4), move.point(t.body_pos[rows]) - s.body_pos_w[:, :1])
    assert torch.allclose(ref[:, : 53 * 3], bodies.reshape(3, -1), atol=1e-5)
    assert torch.allclose(ref[:, -2], (j + 1).float() / last.float())  # the clip's phase restarts with the loop
    assert torch.equal(plain.reference_obs()[:, -2], torch.ones(3))  # held at the last frame without a loop


def test_a_loop_s_jump_fades_over_its_blend_frames(dribble):
    ids = torch.tensor([0, 1, 2])
    last = dribble.lengths[ids] - 1
    runs = {}
    for blend in (0, 10):
        env = _env(dribble, blend=blend)
        env.reset()
        env.reset_envs(torch.arange(3), ids, last - 5)
        refs, ahead = [], []
        for _ in range(25):  # the loop at the 6th step, the fade over the 10 after it
            s = env.sim
            ahead.append((env.reference_obs()[:, : 53 * 3], s.body_pos_w[:, 0].clone(), s.body_quat_w[:, 0].clone()))
            env.step(torch.zeros(3, env.num_actions))
            refs.append(env.reference())
        runs[blend] = (refs, ahead)
    pos = {b: torch.stack([r[0] for r in runs[b][0]]) for b in runs}  # (T, 3, 53, 3)
    step = lambda p: (p[1:] - p[:-1]).norm(dim=-1).mean(-1)  # (T-1, 3) mean body move a frame
    plain, faded = step(pos[0]), step(pos[10])
    usual = plain[:4].mean()  # frames of the clip before the loop
    assert (plain[4] > 2 * usual).all(), "the loop jumps without a fade"
    assert (faded < 1.6 * usual).all(), "the fade leaves no jump"
    assert torch.allclose(pos[10][15:], pos[0][15:], atol=1e-5)  # the looped clip's own again after the fade
    turn = {b: torch.stack([rotations.quat_angle(r1[1], r0[1]) for r0, r1 in zip(runs[b][0], runs[b][0][1:])])
            for b in runs}  # (T-1, 3, 53) each body's turn a frame (rad)
    assert turn[10][4].max() < turn[0][4].max() / 2 and turn[10][4].max() <= turn[0][:4].max()  # orientations too
    # what the critic sees ahead of each step is the reference that step then scores, faded alike
    for (ref, ahead) in zip(*runs[10]):
        features, root_pos, root_quat = ahead
        inv = rotations.heading_inverse(root_quat)[:, None].expand(3, 53, 4)
        bodies = rotations.quat_rotate(inv, ref[0] - root_pos[:, None]).reshape(3, -1)
        assert torch.allclose(features, bodies, atol=1e-5)


def test_a_looped_run_resumes_exactly(dribble):
    a = _env(dribble, auto_reset=True, max_episode_steps=60)
    a.reset()
    acts = torch.randn(40, 3, a.num_actions, generator=torch.Generator().manual_seed(0)) * 0.1
    for x in acts[:20]:
        a.step(x)
    state = a.state_dict()
    b = _env(dribble, auto_reset=True, max_episode_steps=60)
    b.reset()
    b.load_state_dict(state)
    for x in acts[20:]:
        ra, rb = a.step(x), b.step(x)
        assert torch.equal(ra[1], rb[1]) and torch.equal(a.frame_ids, b.frame_ids)
    assert torch.equal(a.align.turn, b.align.turn) and torch.equal(a.sim.qpos, b.sim.qpos)


def test_bad_loop_flags_are_refused_in_one_line():
    with pytest.raises(UserError, match="--env.loops.labels"):
        EnvConfig(loops=Loops((64,)))
    with pytest.raises(UserError, match="--env.loops.min-frames"):
        EnvConfig(loops=Loops((13,), min_frames=0, blend_frames=0))
    with pytest.raises(UserError, match="--env.loops.blend-frames 30: must be at least 0 and less than"):
        EnvConfig(loops=Loops((13,), min_frames=30, blend_frames=30))


def test_a_teacher_trained_with_loops_records_them_and_is_evaluated_with_them(tmp_path):
    fast = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "1", "--device", "cpu",
            "--hidden", "32", "32", "--warm-start-steps", "5", "--critic-warmup-iterations", "0",
            "--actor-prime-iterations", "0", "--critic-reference", "--actor-reference", "--motion-dir",
            str(DATA / "run"), "--env.loops.labels", "13", "--env.steps-after-clip", "0"]
    r = _train(*fast, "--iterations", "1", "--run-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    r = _train("--iterations", "2", "--device", "cpu", "--resume", tmp_path / "a" / "checkpoint.pt")
    assert r.returncode == 0, r.stderr
    policy = load_policy(tmp_path / "a" / "policy.pt", num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    # written by the resumed run: the loops came back with its arguments
    assert policy.info["loops"] == {"labels": [13], "min_frames": 30, "blend_frames": 10}
    assert policy.info["iteration"] == 2
    assert evaluation_config(policy, 5, "mujoco").loops == Loops((13,), 30, 10)
    policy.num_reference = 0  # the same file read as a skill policy would be: no reference, so no loop
    assert evaluation_config(policy, 5, "mujoco").loops == Loops()
    # trace_episode feeds a teacher the reference, as the evaluation does (it used to refuse one)
    from skillmimic import trace_episode
    lines = trace_episode.trace(trace_episode.Args(checkpoint=str(tmp_path / "a" / "policy.pt"),
                                                   motion_dir=str(DATA / "run"), steps=2, every=1))
    assert [x["step"] for x in lines] == [1, 2] or lines[-1]["fell"]
    assert lines[0]["ball_error_m"] < 0.15 and lines[0]["frame"] == 1
