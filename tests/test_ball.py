"""Making the ball learnable: the ball assist (force, schedule, adaptive factor), the physical options (ball mass,
palm, the ball's bounce and roll on the floor) and their record in policy files, the contact-aware termination, and
SkillMimic's form of the body errors."""

import dataclasses
import math

import mujoco

import numpy as np
import pytest
import torch

from skillmimic import model as M
from skillmimic import rewards as R
from skillmimic.envs.assist import AssistConfig, BallAssist, MassCurriculum, assist_force, recorded_step
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.evaluate import evaluation_config
from skillmimic.motion import MotionSet
from skillmimic.policy import SkillPolicy, load_policy, policy_file
from skillmimic.checkpoint import save_atomic
from skillmimic.errors import UserError
from skillmimic.sim import SimConfig, make_sim
from paths import DATA


@pytest.fixture(scope="module")
def rigid_layup():
    return MotionSet(DATA / "layup", hand="rigid")


def _env(motions, n=2, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", hand="rigid", auto_reset=False, **kw), motions, n, "cpu", seed=3)


# --- the assist force ----------------------------------------------------------------------------------------
def test_assist_force_pulls_towards_the_reference_and_is_clamped_and_zero_at_factor_zero():
    pos, vel = torch.zeros(3, 3), torch.zeros(3, 3)
    ref_pos = torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    ref_vel = torch.tensor([[0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    f = assist_force(pos, vel, ref_pos, ref_vel, 0.5, 400.0, 40.0, 30.0, torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(f[0], 0.5 * torch.tensor([4.0, 4.0, 0.0]))  # kp * 0.01 and kd * 0.1, times the mass
    assert torch.allclose(f[1], torch.tensor([0.0, 0.0, 0.5 * 30.0]))  # 400 m/s^2 asked, 30 given
    assert torch.equal(f[2], torch.zeros(3))  # factor 0: no force


def test_the_schedule_falls_linearly_to_zero():
    a = BallAssist(AssistConfig(mode="schedule", schedule_steps=4), 3, torch.device("cpu"))
    clip = torch.ones(3, dtype=torch.bool)
    seen = []
    for _ in range(6):
        a.update(torch.zeros(3, dtype=torch.bool), clip)
        seen.append(float(a.factor))
    assert seen == [0.75, 0.5, 0.25, 0.0, 0.0, 0.0]


def test_adaptive_factor_follows_the_probes_hazard_on_hand_set_counts():
    cfg = AssistConfig(mode="adaptive", hazard_high=0.1, hazard_low=0.001, hazard_decay=0.0)  # no memory
    a = BallAssist(cfg, 4, torch.device("cpu"))
    assert float(a.factor) == 1.0  # it starts at the high hazard
    a.assisted[:] = torch.tensor([True, True, False, False])  # two probes
    clip = torch.ones(4, dtype=torch.bool)
    a.update(torch.tensor([True, True, False, False]), clip)  # only assisted episodes ended: the probes' hazard 0
    assert float(a.factor) == 0.0
    a.update(torch.tensor([False, False, True, True]), clip)  # both probes ended: hazard 1 >= 0.1
    assert float(a.factor) == 1.0
    a.probe_steps.fill_(100.0), a.probe_ends.fill_(1.0)  # hazard 0.01: halfway between 0.1 and 0.001 in log
    cfg.hazard_decay = 1.0
    a.update(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool))  # no probe step: counts stay
    assert math.isclose(float(a.factor), 0.5, rel_tol=1e-5)
    with pytest.raises(ValueError, match="hazard_high"):
        BallAssist(AssistConfig(mode="adaptive", hazard_high=0.01, hazard_low=0.1), 2, torch.device("cpu"))


def test_probe_share_decides_which_episodes_are_assisted():
    gen = torch.Generator().manual_seed(0)
    a = BallAssist(AssistConfig(mode="adaptive", probe_share=0.25), 4000, torch.device("cpu"))
    a.start(torch.arange(4000), gen)
    assert 0.70 < float(a.assisted.float().mean()) < 0.80
    off = BallAssist(AssistConfig(), 10, torch.device("cpu"))
    off.start(torch.arange(10), gen)
    assert not off.assisted.any() and float(off.env_factor(torch.ones(10, dtype=torch.bool)).abs().sum()) == 0.0


def _ball_error_after(env, steps):
    """From the clip's frame 20 (the ball pushed down), the body held at the reference's hinges: the mean ball
    error over `steps` control steps."""
    ids = torch.arange(env.num_envs)
    env.reset_envs(ids, torch.zeros(env.num_envs, dtype=torch.long), torch.full((env.num_envs,), 20))
    with torch.no_grad():
        env.sim.qpos[:, env.spec.ball_qpos.start + 2] += 0.3  # the ball 30 cm above its reference
    env.sim.forward()
    env.assist.assisted[:] = True
    err = []
    for _ in range(steps):
        hold = env.motions.table.dof_pos[env.motions.rows(env.motion_ids, env.frame_ids + 1)] / env.cfg.action_scale
        env.step(hold)
        rows = env.motions.rows(env.motion_ids, env.frame_ids)
        err.append(float((env.sim.ball_pos_w - env.motions.table.ball_pos[rows]).norm(dim=-1).mean()))
    return sum(err) / len(err)


def test_the_assist_moves_the_ball_towards_its_reference_and_the_evaluation_never_assists(rigid_layup):
    free = _ball_error_after(_env(rigid_layup, n=1), 15)
    assisted = _ball_error_after(_env(rigid_layup, n=1, assist=AssistConfig(mode="schedule",
                                                                                schedule_steps=10**6)), 15)
    assert assisted < 0.7 * free, (assisted, free)
    policy = SkillPolicy(SKILL_OBS_DIM, M.load_spec("rigid").num_dofs, (8,), 1.5, 2.0, hand="rigid")
    cfg = evaluation_config(policy, 10, "mujoco")
    assert cfg.assist.mode == "off"
    env = ImitationEnv(cfg, rigid_layup, 1, "cpu")
    env.reset()
    env.step(torch.zeros(1, env.num_actions))
    assert torch.equal(env.sim.ball_force_w, torch.zeros(1, 3))


# --- physical options ------------------------------------------------------------------------------------------
def test_physics_options_build_and_the_palm_is_a_hand_geom():
    plain = M.load_model("rigid")
    heavy = M.load_model("rigid", physics=M.Physics(ball_mass=7.2, palm=True))
    assert heavy.ngeom == plain.ngeom + 2
    assert math.isclose(heavy.body_mass[M.BALL_BODY], 7.2)
    assert math.isclose(heavy.body_inertia[M.BALL_BODY][0], 2 / 3 * 7.2 * 0.12**2, rel_tol=1e-6)
    assert math.isclose(heavy.body_subtreemass[M.BALL_BODY], 7.2)  # the compiler's constants follow the mass
    assert math.isclose(heavy.body_invweight0[M.BALL_BODY][0], 1 / 7.2, rel_tol=1e-6)
    for side in ("L_Wrist", "R_Wrist"):  # one box more on each wrist, heavier by its 0.19 kg
        b = heavy.body(side).id
        boxes = [g for g in range(heavy.ngeom) if heavy.geom_bodyid[g] == b and heavy.geom_type[g] == 6]
        assert len(boxes) == 1 and np.allclose(heavy.geom_size[boxes[0]], M.PALM_HALF_SIZE)
        assert math.isclose(heavy.body_mass[b] - plain.body_mass[b], 1000 * 0.12 * 0.02 * 0.08, rel_tol=1e-6)
    sim = make_sim(SimConfig(hand="rigid", backend="mujoco", physics=M.Physics(palm=True)), 1, "cpu")
    wrists = {sim.model.body(w).id for w in M.PALM_POS}
    g = [i for i in range(sim.model.ngeom) if sim.model.geom_type[i] == 6 and sim.model.geom_bodyid[i] in wrists]
    assert len(g) == 2 and all(int(sim._geom_class[i]) in M.LEFT_HAND + M.RIGHT_HAND for i in g)  # hand contacts
    with pytest.raises(ValueError, match="ball mass"):
        M.load_model("rigid", physics=M.Physics(ball_mass=0.0))


# --- the ball-mass curriculum ----------------------------------------------------------------------------------
def test_the_mass_curriculum_falls_in_equal_ratios_to_the_physics_mass():
    c = MassCurriculum(start=7.2, steps=8, levels=4)
    masses = [c.mass(0.6, k) for k in range(11)]
    r = (0.6 / 7.2) ** 0.25
    expected = [7.2, 7.2, 7.2 * r, 7.2 * r, 7.2 * r**2, 7.2 * r**2, 7.2 * r**3, 7.2 * r**3, 0.6, 0.6, 0.6]
    assert np.allclose(masses, expected)
    assert MassCurriculum().mass(0.6, 0) == 0.6  # off
    with pytest.raises(UserError, match="mass-curriculum"):
        EnvConfig(mass_curriculum=MassCurriculum(start=-1.0))


def test_a_mass_curriculum_continued_at_step_n_gives_the_masses_of_the_uninterrupted_one_at_n_plus_s():
    c = MassCurriculum(start=7.2, steps=8, levels=4)
    for n in (0, 1, 3, 6, 8, 20):
        continued = dataclasses.replace(c, first_step=n)
        assert [continued.mass(0.6, s) for s in range(12)] == [c.mass(0.6, n + s) for s in range(12)], n
    assert dataclasses.replace(c, first_step=2).mass(0.6, 0) < c.mass(0.6, 0) == 7.2  # not the heavy ball again
    assert MassCurriculum(first_step=5).mass(0.6, 0) == 0.6  # no curriculum: the physics' mass
    with pytest.raises(UserError, match="^--env.mass-curriculum.first-step -1: must be 0 or more"):
        EnvConfig(mass_curriculum=MassCurriculum(start=7.2, first_step=-1))


def test_the_mass_curriculum_record_and_the_note_of_a_run_that_starts_it_again():
    """What a policy file records (the step reached, counted from first_step), and the note a run with a
    curriculum that starts it at 0 shows for a file whose run stood further on; a file without a record (no
    curriculum, or older) is step 0 and gives no note; a malformed record is one line naming the file."""
    c = MassCurriculum(start=7.2, steps=8, levels=4, first_step=3)
    assert c.record(5) == {"start": 7.2, "steps": 8, "levels": 4, "step": 8}
    assert MassCurriculum().record(5) is None  # no curriculum: no entry
    entry = MassCurriculum(start=7.2, steps=8, levels=4).record(6)
    fresh = MassCurriculum(start=7.2, steps=8, levels=4)
    r = (0.6 / 7.2) ** 0.25
    assert fresh.note(entry, 0.6, "--init-from p.pt") == (
        f"note: --init-from p.pt: its run stood at step 6 of its mass curriculum (ball {7.2 * r**3:.3g} kg); this "
        "run starts the curriculum again from 7.2 kg unless --env.mass-curriculum.first-step 6 is passed")
    assert dataclasses.replace(fresh, first_step=6).note(entry, 0.6, "p.pt") is None  # told where to start
    assert MassCurriculum().note(entry, 0.6, "p.pt") is None  # this run has no curriculum
    assert fresh.note(None, 0.6, "p.pt") is None and recorded_step(None, "p.pt") == 0  # a file without the record
    assert fresh.note({**entry, "step": 0}, 0.6, "p.pt") is None
    for bad in ({**entry, "step": -1}, {**entry, "step": 2.5}, {"step": 3}, [3]):
        with pytest.raises(UserError, match=r"^p\.pt: mass_curriculum .* is not a mass curriculum's record"):
            recorded_step(bad, "p.pt")


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_warp"])
def test_a_mass_set_on_a_running_simulator_acts_as_one_built_with_it(rigid_layup, backend):
    """Simulator.set_ball_mass gives the same motion as a simulator built with that mass (the constants that
    follow the mass included), on both engines."""
    def rollout(sim):
        mid, fid = torch.zeros(2, dtype=torch.long), torch.tensor([0, 40])
        sim.reset(torch.arange(2), *rigid_layup.state(mid, fid))
        for k in range(20):
            sim.ctrl[:] = rigid_layup.frames(mid, fid + k + 1).dof_pos
            sim.step()
        return sim.ball_pos_w.clone()

    changed = make_sim(SimConfig(backend=backend, hand="rigid", physics=M.Physics(palm=True)), 2, "cpu")
    changed.set_ball_mass(7.2)
    built = make_sim(SimConfig(backend=backend, hand="rigid", physics=M.Physics(palm=True, ball_mass=7.2)), 2, "cpu")
    for name in M.BALL_MASS_FIELDS:
        assert np.allclose(getattr(changed.model, name), getattr(built.model, name))
    light = make_sim(SimConfig(backend=backend, hand="rigid", physics=M.Physics(palm=True)), 2, "cpu")
    a, b, c = rollout(changed), rollout(built), rollout(light)
    assert float((a - b).norm(dim=-1).max()) < 1e-4 < float((a - c).norm(dim=-1).max())


def test_the_environment_follows_the_mass_curriculum_and_resumes_it(rigid_layup):
    cfg = dict(physics=M.Physics(palm=True), mass_curriculum=MassCurriculum(start=2.4, steps=4, levels=2))
    env = _env(rigid_layup, **cfg)
    masses = [env.sim.model.body_mass[M.BALL_BODY]]
    for _ in range(5):
        _, _, _, _, info = env.step(torch.zeros(2, env.num_actions))
        masses.append(env.sim.model.body_mass[M.BALL_BODY])
    assert np.allclose(masses, [2.4, 2.4, 2.4, 1.2, 1.2, 0.6])  # [0]: built; [k]: the mass step k played with
    assert float(info["stats"]["ball_mass"]) == pytest.approx(0.6)
    state = env.state_dict()
    again = _env(rigid_layup, **cfg)
    assert again.sim.model.body_mass[M.BALL_BODY] == pytest.approx(2.4)
    again.load_state_dict(state)
    assert again.mass_steps == 5 and again.ball_mass == pytest.approx(0.6)
    assert again.sim.model.body_subtreemass[M.BALL_BODY] == pytest.approx(0.6)


def test_an_environment_continued_at_a_curriculum_step_plays_the_masses_from_there_and_resumes_them(rigid_layup):
    """--env.mass-curriculum.first-step 2: the ball of an environment built anew has the mass the uninterrupted
    one reached at step 2 (test above: 2.4, 2.4, 1.2, 1.2, 0.6 from step 0), and a checkpoint of it resumes
    there."""
    curriculum = MassCurriculum(start=2.4, steps=4, levels=2, first_step=2)
    cfg = dict(physics=M.Physics(palm=True), mass_curriculum=curriculum)
    env = _env(rigid_layup, **cfg)
    masses = [env.ball_mass]
    for _ in range(3):
        env.step(torch.zeros(2, env.num_actions))
        masses.append(env.ball_mass)
    assert np.allclose(masses, [1.2, 1.2, 1.2, 0.6])  # [0]: built; [k]: the mass step 2 + k - 1 played with
    assert curriculum.record(env.mass_steps)["step"] == 5
    again = _env(rigid_layup, **cfg)
    again.load_state_dict(env.state_dict())
    assert again.mass_steps == 3 and again.ball_mass == pytest.approx(0.6)


@pytest.mark.parametrize("mass", [M.FIBA_BALL_MASS, 7.2])
def test_ball_rebound_meets_fiba_whatever_the_mass(mass):
    """The ball-floor contact is a spring per unit of mass: dropped from 1.8 m (bottom) it rebounds to 1.2-1.4 m."""
    sim = make_sim(SimConfig(backend="mujoco", hand="rigid", physics=M.Physics(ball_mass=mass, palm=True)), 1, "cpu")
    qpos = sim.qpos.clone()
    qpos[:, 0:3] = torch.tensor([5.0, 5.0, 1.0])
    qpos[:, sim.spec.ball_qpos.start : sim.spec.ball_qpos.start + 3] = torch.tensor([0.0, 0.0, 1.8 + 0.12])
    sim.reset(torch.arange(1), qpos, torch.zeros_like(sim.qvel))
    z = []
    for _ in range(150):
        sim.step()
        z.append(float(sim.ball_pos_w[0, 2]))
    z = np.array(z)
    low = int(np.argmin(z[:60]))
    assert 1.2 <= z[low : low + 60].max() + 0.12 <= 1.4


def test_a_policy_records_its_physics_and_is_evaluated_with_them(tmp_path):
    spec = M.load_spec("rigid")
    p = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, hand="rigid", model_sha256=spec.sha256)
    physics = M.Physics(ball_mass=7.2, palm=True)
    save_atomic(policy_file(p.actor, p.obs_norm, p.num_obs, p.num_actions, (8,), 1.5, 2.0, hand="rigid",
                            model_sha256=spec.sha256, physics=physics.as_dict()), tmp_path / "p.pt")
    loaded = load_policy(tmp_path / "p.pt")
    assert loaded.physics == physics and "physics" in loaded.info
    assert evaluation_config(loaded, 10).physics == physics
    save_atomic(policy_file(p.actor, p.obs_norm, p.num_obs, p.num_actions, (8,), 1.5, 2.0, hand="rigid",
                            model_sha256=spec.sha256), tmp_path / "old.pt")
    # files without it: FIBA ball, no palm, and the hand's cushion they were trained with
    assert load_policy(tmp_path / "old.pt").physics == M.Physics(hand_margin=M.LEGACY_HAND_MARGIN)
    assert M.Physics.from_dict({"ball_mass": 0.6, "palm": True}).hand_margin == M.LEGACY_HAND_MARGIN
    assert M.Physics.from_dict(M.Physics().as_dict()) == M.Physics()


@pytest.mark.parametrize("hand_margin", [0.0, M.LEGACY_HAND_MARGIN])
def test_the_hand_pushes_the_ball_only_within_its_margin(rigid_layup, hand_margin):
    """In the layup's first frame (the ball carried, moved out of the hand's geoms) the hand's contacts are listed
    (the contact graph sees the touch) but push only with the legacy cushion; the ball still touches the hand."""
    m = M.load_model("rigid", physics=M.Physics(hand_margin=hand_margin))
    d = mujoco.MjData(m)
    qpos, _ = rigid_layup.state(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    d.qpos[:] = qpos[0].double().numpy()
    mujoco.mj_forward(m, d)
    ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
    hand = M.hand_geoms(m)
    touching = [i for i in range(d.ncon) if ball in d.contact[i].geom and hand[d.contact[i].geom].any()]
    assert touching and all(d.contact[i].dist >= -1e-6 for i in touching)  # listed, none overlapping
    assert min(d.contact[i].dist for i in touching) < 0.005  # the fingers are on the ball
    force = np.zeros(6)
    pushing = 0.0
    for i in touching:
        mujoco.mj_contactForce(m, d, i, force)
        pushing += abs(force[0])
    assert (pushing > 1.0) == (hand_margin > 0)


# --- contact-aware termination ------------------------------------------------------------------------------------
def test_a_missing_hand_contact_ends_the_episode_after_the_patience(rigid_layup):
    env = _env(rigid_layup, n=1, contact_patience=3)
    held = torch.nonzero(rigid_layup.table.contact[:40] > 0.5).flatten()
    assert len(held) > 10  # the layup holds the ball in its first frames
    env.reset_envs(torch.arange(1), torch.zeros(1, dtype=torch.long), held[:1])
    with torch.no_grad():
        env.sim.qpos[:, env.spec.ball_qpos.start + 1] += 1.5  # the ball 1.5 m away from the hands
    env.sim.forward()
    ended = []
    for _ in range(5):
        hold = env.motions.table.dof_pos[env.motions.rows(env.motion_ids, env.frame_ids + 1)] / env.cfg.action_scale
        _, _, terminated, _, _ = env.step(hold)
        ended.append(bool(terminated[0]))
    assert ended == [False, False, False, True, True]  # more than 3 steps in a row without the contact


# --- SkillMimic's form of the body errors ---------------------------------------------------------------------------
def test_local_rotation_error_counts_each_joint_relative_to_its_parent():
    parents = torch.tensor([0, 0, 1])  # a chain: root, its child, the grandchild
    q = torch.tensor([[[1.0, 0, 0, 0]] * 3])
    turn = torch.tensor([math.cos(0.15), math.sin(0.15), 0.0, 0.0])  # 0.3 rad about x
    bent = q.clone()
    bent[0, 1] = turn  # the middle joint turned: the grandchild moves with it, its local rotation does not
    bent[0, 2] = turn
    every = torch.ones(3, dtype=torch.bool)
    e = R.local_rotation_error(bent, q, parents, every)
    assert torch.allclose(e, torch.tensor([0.3**2 / 3 / 3]), atol=1e-6)  # one joint of three, angle^2 / 3
    assert torch.allclose(R.local_rotation_error(bent, q, parents, torch.tensor([True, False, True])),
                          torch.zeros(1), atol=1e-6)  # the turned joint not counted


def test_components_form_is_skillmimics_scale_on_the_data(rigid_layup):
    """The same states under both forms: 'components' divides the position and graph errors by 3 and measures
    rotations locally, so a uniformly perturbed pose costs far less in rotation than the summed world form."""
    env = _env(rigid_layup, n=1)
    t = rigid_layup.table
    rows = torch.tensor([30])
    g = torch.Generator().manual_seed(0)
    noisy = t.body_quat[rows] + 0.05 * torch.randn(1, M.NUM_BODIES, 4, generator=g)
    noisy = noisy / noisy.norm(dim=-1, keepdim=True)
    pos = t.body_pos[rows] + 0.02
    args = dict(body_pos=pos, body_quat=noisy, dof_vel=t.dof_vel[rows], ball_pos=t.ball_pos[rows],
                ball_vel=t.ball_vel[rows], hand_ball=torch.ones(1, 2, dtype=torch.bool),
                body_ball=torch.zeros(1, M.NUM_BODIES, dtype=torch.bool),
                body_floor=torch.zeros(1, M.NUM_BODIES, dtype=torch.bool), ref_body_pos=t.body_pos[rows],
                ref_body_quat=t.body_quat[rows], ref_dof_vel=t.dof_vel[rows], ref_ball_pos=t.ball_pos[rows],
                ref_ball_vel=t.ball_vel[rows], ref_contact=torch.ones(1), hand_mask=env.hand_mask,
                floor_allowed=env.floor_allowed, w=R.weights(R.RewardConfig()), parents=env.parents,
                rot_bodies=env.rot_bodies)
    _, summed = R.hoi_reward(**args)
    _, comp = R.hoi_reward(**args, components=True)
    assert torch.allclose(-torch.log(comp["p"]), -torch.log(summed["p"]) / 3, rtol=1e-4)
    assert torch.allclose(-torch.log(comp["ig"]), -torch.log(summed["ig"]) / 3, rtol=1e-4)
    assert float(comp["r"]) > float(summed["r"])  # the rotation term is far from a cliff
    assert env.rot_bodies.sum() == 1 + 22  # the root and the 22 joints with hinges (the rigid hand's fingers are fixed)


# --- the ball on the floor: restitution and rolling resistance (Physics.ball_restitution, ball_rolling) ----------
def _ball_alone(physics: M.Physics, n: int = 1, backend: str = "mujoco"):
    """A simulator of n worlds with the humanoid out of the ball's way and off the floor (5 m off, 20 m up: it falls
    11 m in 1.5 s), and its qpos."""
    sim = make_sim(SimConfig(backend=backend, hand="rigid", physics=physics), n, "cpu")
    qpos = sim.qpos.clone()
    qpos[:, 0:3] = torch.tensor([5.0, 5.0, 20.0])
    return sim, qpos


def _bounce_ratio(physics: M.Physics, backend: str = "mujoco") -> float:
    """Dropped from 1 m (its bottom), the height (bottom) of the ball's first rebound over 1 m. At 1/120 s the
    bounce depends on where the impact falls between two steps (e 0.72-0.76 with the MJCF's pair), so: the mean
    over 8 drops from 1 to 1.03 m, which hit the floor a fraction of a step apart."""
    drops = 1.0 + 0.0046 * torch.arange(8.0)  # the ball falls 3.7 cm in a step at its 4.4 m/s impact
    sim, qpos = _ball_alone(physics, len(drops), backend)
    qpos[:, sim.spec.ball_qpos.start + 2] = drops + M.BALL_RADIUS
    sim.reset(torch.arange(len(drops)), qpos, torch.zeros_like(sim.qvel))
    z = []
    for _ in range(90):  # 1.5 s: the fall takes 0.45 s, the rebound's rise about 0.35
        sim.step()
        z.append(sim.ball_pos_w[:, 2] - M.BALL_RADIUS)
    z = torch.stack(z)  # (steps, drops)
    low = z[:40].argmin(0)
    rebound = torch.stack([z[low[i]:, i].max() for i in range(len(drops))])
    return float((rebound / drops).mean())


def _rolling_deceleration(physics: M.Physics, backend: str = "mujoco") -> float:
    """The ball rolling at 1.5 m/s along x: its speed lost (m/s) over 1 s, after a settling 0.1 s."""
    sim, qpos = _ball_alone(physics, 1, backend)
    b = sim.spec.ball_qvel.start
    qvel = torch.zeros_like(sim.qvel)
    qvel[:, b], qvel[:, b + 4] = 1.5, 1.5 / M.BALL_RADIUS  # spin about y: rolling without slipping
    qpos[:, sim.spec.ball_qpos.start : sim.spec.ball_qpos.start + 3] = torch.tensor([0.0, -1.0, M.BALL_RADIUS])
    sim.reset(torch.arange(1), qpos, qvel)
    speeds = []
    for _ in range(66):  # control steps of 1/60 s
        sim.step()
        speeds.append(float(sim.ball_lin_vel_w[0, 0]))
    return speeds[5] - speeds[65]


def test_ball_floor_defaults_leave_the_mjcf_pair_unchanged():
    m = M.load_model("rigid", physics=M.Physics(palm=True))
    p = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_PAIR, "ball_floor")
    assert m.pair_dim[p] == 3 and list(m.pair_solref[p]) == [-7500.0, -16.0]
    assert list(m.pair_friction[p]) == pytest.approx([0.8, 0.8, 0.05, 0.0001, 0.0001])
    set_ = M.load_model("rigid", physics=M.Physics(palm=True, ball_restitution=0.82, ball_rolling=0.4))
    assert set_.pair_dim[p] == 6 and set_.pair_solref[p, 0] == -7500.0 and -16.0 < set_.pair_solref[p, 1] < 0
    assert 0.005 < set_.pair_friction[p, 3] == set_.pair_friction[p, 4] < 0.02  # m (3 mu_r g / (5 r): 0.008)


def test_the_ball_rebounds_to_e_squared_of_its_drop_with_a_restitution():
    """Within 0.025 of e^2 (the Euler flight itself loses about 1% of e: e 0.9 rebounds to 0.79, not 0.81)."""
    assert _bounce_ratio(M.Physics(palm=True)) == pytest.approx(0.581, abs=0.005)  # today: e = 0.76 (MJCF's pair)
    for e in (0.6, 0.82, 0.9):
        assert _bounce_ratio(M.Physics(palm=True, ball_restitution=e)) == pytest.approx(e**2, abs=0.025)


def test_a_rolling_ball_slows_at_its_rolling_resistance_and_keeps_its_speed_without():
    assert abs(_rolling_deceleration(M.Physics(palm=True))) < 0.01  # today: no rolling friction
    for a in (0.4, 1.0):
        assert _rolling_deceleration(M.Physics(palm=True, ball_rolling=a)) == pytest.approx(a, rel=0.1)


def test_ball_floor_options_are_checked_recorded_and_parsed(tmp_path):
    import sys

    from paths import ROOT
    from skillmimic.cli import parse

    for bad in (dict(ball_restitution=-0.1), dict(ball_restitution=1.2), dict(ball_restitution=0.0),
                dict(ball_rolling=-0.4), dict(ball_rolling=0.0), dict(ball_rolling=float("nan"))):
        with pytest.raises(UserError, match="physics ball_") as e:
            M.Physics(**bad)
        assert "\n" not in str(e.value)
    physics = M.Physics(palm=True, ball_restitution=0.82, ball_rolling=0.4)
    assert M.Physics.from_dict(physics.as_dict()) == physics
    assert M.Physics.from_dict({"palm": True}).ball_restitution is None  # older files: the MJCF's pair
    spec = M.load_spec("rigid")
    p = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, hand="rigid", model_sha256=spec.sha256)
    save_atomic(policy_file(p.actor, p.obs_norm, p.num_obs, p.num_actions, (8,), 1.5, 2.0, hand="rigid",
                            model_sha256=spec.sha256, physics=physics.as_dict()), tmp_path / "p.pt")
    assert evaluation_config(load_policy(tmp_path / "p.pt"), 10).physics == physics
    sys.path.insert(0, str(ROOT))
    import train_llc

    env = parse(train_llc.Args, ["--env.physics.ball-restitution", "0.82", "--env.physics.ball-rolling", "0.4"]).env
    assert (env.physics.ball_restitution, env.physics.ball_rolling, env.physics.palm) == (0.82, 0.4, True)
    assert parse(train_llc.Args, []).env.physics.ball_restitution is None
    with pytest.raises(UserError, match="physics ball_restitution 1.5: must be within") as e:
        parse(train_llc.Args, ["--env.physics.ball-restitution", "1.5"])
    assert "\n" not in str(e.value)


def test_mujoco_warp_gives_the_ball_floor_options_as_plain_mujoco():
    """MuJoCo Warp (here on its CPU device) supports what the options use, the pair's solref and its condim 6
    (rolling friction, pyramidal cone): the same rebound and rolling deceleration as plain MuJoCo."""
    physics = M.Physics(palm=True, ball_restitution=0.82, ball_rolling=0.4)
    assert _bounce_ratio(physics, "mujoco_warp") == pytest.approx(_bounce_ratio(physics), abs=0.005)
    assert _rolling_deceleration(physics, "mujoco_warp") == pytest.approx(_rolling_deceleration(physics), abs=0.005)
