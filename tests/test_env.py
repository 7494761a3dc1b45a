
import math
import re

import pytest
import torch

from falls import knock_down
from paths import DATA
from skillmimic import model as M
from skillmimic import rotations, skills
from skillmimic.envs.ball_noise import BallNoise, perturb_ball
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, humanoid_ball_obs
from skillmimic.errors import UserError
from skillmimic.rewards import RewardConfig
from skillmimic.motion import MotionSet


@pytest.fixture(scope="module")
def two_skills():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips)


def _env(motions, n=4, backend="mujoco", hand="full", **kw):
    return ImitationEnv(EnvConfig(backend=backend, hand=hand, **kw), motions, n, "cpu", seed=1)


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
    knock_down(env, 0)
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


# --- starts with the ball perturbed (EnvConfig.ball_noise) -------------------------------------------------------
def test_ball_noise_off_gives_the_reference_start_and_draws_nothing(two_skills):
    plain = _env(two_skills)
    plain.reset()
    off = _env(two_skills, ball_noise=BallNoise(share=0.0, pos=0.1, vel=1.0))
    off.reset()
    assert torch.equal(off.gen.get_state(), plain.gen.get_state())  # the random stream of today's runs
    assert torch.equal(off.motion_ids, plain.motion_ids) and torch.equal(off.frame_ids, plain.frame_ids)
    qpos, qvel = two_skills.state(off.motion_ids, off.frame_ids)
    assert torch.equal(off.sim.qpos, qpos) and torch.equal(off.sim.qvel, qvel)


def test_ball_noise_has_its_scale_and_share_and_leaves_the_humanoid_alone():
    spec = M.load_spec("rigid")
    n, cfg = 4000, BallNoise(share=1.0, pos=0.05, vel=0.8)
    qpos, qvel = torch.rand(n, spec.nq), torch.rand(n, spec.nv)
    q, v = qpos.clone(), qvel.clone()
    perturb_ball(q, v, spec, cfg, torch.Generator().manual_seed(0))
    p, w = spec.ball_qpos.start, spec.ball_qvel.start
    mad = (2 / math.pi) ** 0.5  # the mean absolute value of a unit Gaussian
    assert float((q - qpos)[:, p : p + 3].abs().mean()) == pytest.approx(cfg.pos * mad, rel=0.05)
    assert float((v - qvel)[:, w : w + 3].abs().mean()) == pytest.approx(cfg.vel * mad, rel=0.05)
    assert torch.equal(q[:, :p], qpos[:, :p]) and torch.equal(q[:, p + 3 :], qpos[:, p + 3 :])  # body; ball's turn
    assert torch.equal(v[:, :w], qvel[:, :w]) and torch.equal(v[:, w + 3 :], qvel[:, w + 3 :])  # body; ball's spin
    q = qpos.clone()
    perturb_ball(q, qvel.clone(), spec, BallNoise(share=0.25), torch.Generator().manual_seed(1))
    moved = (q != qpos).any(-1).float().mean()
    assert float(moved) == pytest.approx(0.25, abs=0.03)


def test_ball_noise_acts_on_drawn_starts_only(two_skills):
    """Training's own starts (reset, the restarts) get it; starts given to the environment (the evaluation's,
    play.py's, the warm start's demonstration) never do."""
    env = _env(two_skills, n=6, ball_noise=BallNoise(share=1.0, pos=0.05, vel=0.8))
    env.reset()
    qpos, qvel = two_skills.state(env.motion_ids, env.frame_ids)
    b, w = env.spec.ball_qpos.start, env.spec.ball_qvel.start
    assert float((env.sim.qpos - qpos)[:, b : b + 3].abs().min(-1).values.min()) > 0  # every ball moved
    assert float((env.sim.qvel - qvel)[:, w : w + 3].abs().min(-1).values.min()) > 0
    assert torch.equal(env.sim.qpos[:, :b], qpos[:, :b]) and torch.equal(env.sim.qvel[:, :w], qvel[:, :w])
    assert torch.allclose(env.sim.ball_pos_w, env.sim.qpos[:, b : b + 3])  # the simulator's poses follow
    given = (torch.zeros(6, dtype=torch.long), torch.arange(6) * 10)
    env.reset_envs(torch.arange(6), *given)
    qpos, qvel = two_skills.state(*given)
    assert torch.equal(env.sim.qpos, qpos) and torch.equal(env.sim.qvel, qvel)


@pytest.mark.parametrize("noise, flag", [(BallNoise(share=1.5), "--env.ball-noise.share 1.5: must be within"),
                                         (BallNoise(share=-0.1), "--env.ball-noise.share -0.1: must be within"),
                                         (BallNoise(share=0.5, pos=-0.01), "--env.ball-noise.pos -0.01: must be 0"),
                                         (BallNoise(share=0.5, vel=float("nan")), "--env.ball-noise.vel nan: must")])
def test_bad_ball_noise_is_refused_in_one_line(noise, flag):
    with pytest.raises(UserError, match=f"^{re.escape(flag)}") as e:
        EnvConfig(ball_noise=noise)
    assert "\n" not in str(e.value)


def test_compiled_reward_and_observation_give_the_eager_values(two_skills, needs_torch_compile):
    """ImitationEnv.compile (train_llc.py --compile): the same observations, rewards and terms, both reward forms."""
    for form in ("bodies", "components"):
        envs = [_env(two_skills, reward=RewardConfig(form=form)) for _ in range(2)]
        envs[1].compile()
        obs = [e.reset() for e in envs]
        assert torch.allclose(obs[0], obs[1], atol=1e-5)
        for _ in range(3):
            out = [e.step(_ref_actions(e)) for e in envs]
            assert torch.allclose(out[0][0], out[1][0], atol=1e-5)  # observations
            assert torch.allclose(out[0][1], out[1][1], rtol=1e-4, atol=1e-6)  # rewards
            for k, v in out[0][4]["terms"].items():
                assert torch.allclose(v, out[1][4]["terms"][k], rtol=1e-4, atol=1e-6), k
