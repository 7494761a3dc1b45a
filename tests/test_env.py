
import pytest
import torch

from paths import DATA
from skillmimic import rotations, skills
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, humanoid_ball_obs
from skillmimic.motion import MotionSet


@pytest.fixture(scope="module")
def two_skills():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips)


def _env(motions, n=4, backend="mujoco", hand="full"):
    return ImitationEnv(EnvConfig(backend=backend, hand=hand), motions, n, "cpu", seed=1)


def _ref_actions(env):
    """Actions whose PD targets are the reference's next hinge angles."""
    rows = env.motions.rows(env.motion_ids, env.frame_ids + 1)
    return env.motions.table.dof_pos[rows] / env.cfg.action_scale


def test_reset_observation_layout_and_skill(two_skills):
    env = _env(two_skills)
    obs = env.reset()
    assert obs.shape == (4, env.num_obs) == (4, SKILL_OBS_DIM) == (4, 804 + 64) and torch.isfinite(obs).all()
    labels = two_skills.labels[env.motion_ids]
    assert torch.equal(obs[:, OBS_DIM:], skills.one_hot(labels))
    assert torch.allclose(obs[:, 0], env.sim.body_pos_w[:, 0, 2])  # root height first
    # Reference-state init: the humanoid stands in the reference pose of its frame.
    f = two_skills.frames(env.motion_ids, env.frame_ids)
    assert torch.allclose(env.sim.body_pos_w, f.body_pos, atol=1e-4)


def test_observation_ignores_where_and_which_way_the_scene_stands():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 53, 4, generator=g)
    args = [torch.randn(2, 53, 3, generator=g), q / q.norm(dim=-1, keepdim=True), torch.randn(2, 53, 3, generator=g),
            torch.randn(2, 53, 3, generator=g), torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g),
            torch.randn(2, 3, generator=g), torch.tensor([[True, False], [False, False]])]
    turn = rotations.quat_from_expmap(torch.tensor([0.0, 0.0, 1.1]))
    shift = torch.tensor([3.0, -1.0, 0.0])
    moved = list(args)
    moved[0] = rotations.quat_rotate(turn.expand(2, 53, 4), args[0]) + shift
    moved[1] = rotations.quat_mul(turn.expand(2, 53, 4), args[1])
    for i in (2, 3):
        moved[i] = rotations.quat_rotate(turn.expand(2, 53, 4), args[i])
    moved[4] = rotations.quat_rotate(turn.expand(2, 4), args[4]) + shift
    for i in (5, 6):
        moved[i] = rotations.quat_rotate(turn.expand(2, 4), args[i])
    a, b = humanoid_ball_obs(*args), humanoid_ball_obs(*moved)
    assert a.shape == (2, OBS_DIM)
    assert torch.allclose(a, b, atol=1e-4)


def test_class_balanced_reference_state_init(two_skills):
    env = _env(two_skills, n=1)
    mids, fids = env.sample_starts(4000)
    labels = two_skills.labels[mids]
    share = float((labels == 31).float().mean())
    assert 0.45 < share < 0.55  # one layup clip against three dribble clips, still half the starts
    assert (fids >= 0).all() and (fids < two_skills.lengths[mids] - 1).all()


def test_step_rewards_following_the_reference(two_skills):
    env = _env(two_skills)
    env.reset()
    obs, reward, terminated, truncated, info = env.step(_ref_actions(env))
    assert obs.shape == (4, env.num_obs) and reward.shape == (4,)
    assert ((reward >= 0) & (reward <= 1)).all()
    assert set(info["terms"]) == {"p", "r", "jv", "op", "ov", "ig", "cg"}
    # One step of PD tracking from the reference pose stays close to the reference.
    assert float(info["terms"]["p"].min()) > 0.8 and float(info["terms"]["r"].min()) > 0.5
    assert not terminated.any()


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_warp"])
def test_sizes_come_from_the_hand(two_skills, backend):
    """The same environment on the rigid hand: 66 actions, the same observation, the reward of its own hinges."""
    rigid = MotionSet([DATA / "layup", DATA / "run"], hand="rigid")
    env, full = _env(rigid, n=3, backend=backend, hand="rigid"), _env(two_skills, n=3)
    assert (env.num_actions, full.num_actions) == (66, 156) and env.num_obs == full.num_obs
    assert env.sim.qpos.shape == (3, 80) and env.sim.ctrl.shape == (3, 66)
    obs = env.reset()
    assert obs.shape == (3, env.num_obs)
    obs, reward, terminated, truncated, info = env.step(_ref_actions(env))
    assert obs.shape == (3, env.num_obs) and env.sim.ctrl.shape == (3, env.num_actions)
    assert float(info["terms"]["p"].min()) > 0.8 and not terminated.any()
    with pytest.raises(ValueError, match="motions are laid out for the full hand, the environment simulates the "
                                         "rigid hand"):
        _env(two_skills, hand="rigid")


def test_fall_terminates_and_restarts(two_skills):
    env = _env(two_skills, n=2)
    env.reset()
    env.step(_ref_actions(env))
    qpos = env.sim.qpos.clone()
    qpos[0, 2] = 0.15  # the pelvis at shin height: the body is on the floor
    env.sim.qpos.copy_(qpos)
    env.sim.forward()
    _, reward, terminated, truncated, info = env.step(_ref_actions(env))
    assert bool(terminated[0]) and not bool(truncated[0])
    assert int(info["episode_steps"][0]) == 2 and int(env.episode_steps[0]) == 0  # restarted


def test_clip_end_truncates(two_skills):
    env = _env(two_skills, n=2)
    env.reset()
    last = two_skills.lengths[env.motion_ids] - 1
    env.reset_envs(torch.arange(2), env.motion_ids.clone(), last - 1)
    _, _, terminated, truncated, _ = env.step(_ref_actions(env))
    assert truncated.all() and not terminated.any()


def test_label_beyond_64_slots_is_refused(tmp_path, two_skills):
    x = torch.zeros(4, 337)
    x[:, 2] = 0.9
    torch.save(x, tmp_path / "077_new_skill.pt")
    with pytest.raises(ValueError, match="077"):
        ImitationEnv(EnvConfig(backend="mujoco"), MotionSet(tmp_path), 1, "cpu")
