import importlib.util

import mujoco
import numpy as np
import pytest
import torch

from paths import DATA, REFERENCE, ROOT
from skillmimic import model as M
from skillmimic import rotations
from skillmimic.errors import UserError
from skillmimic.motion import JOINT_ROT, MotionSet, load_clip
from skillmimic.sim import SimConfig, make_sim

_spec = importlib.util.spec_from_file_location("make_model", ROOT / "tools" / "make_model.py")
make_model = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_model)

# (nq, nv, nu) of each hand.
SIZES = {"full": (170, 168, 156), "anatomical": (122, 120, 108), "hinge1": (114, 112, 100), "rigid": (80, 78, 66)}
FINGER_TIPS = [M.BODY_NAMES.index(f"{side}_{finger}3") for side in "LR"
               for finger in ("Index", "Middle", "Pinky", "Ring", "Thumb")]


@pytest.mark.parametrize("hand", M.HANDS)
def test_committed_model_is_what_the_generator_writes(hand):
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} not here")
    assert make_model.file_name(hand) == M.model_path(hand).name
    assert make_model.make_model(str(REFERENCE), hand) == M.model_path(hand).read_text()


def test_every_hand_keeps_the_bodies_and_geoms_and_drops_only_finger_hinges():
    full, spec_full = M.load_model("full"), M.load_spec("full")
    assert spec_full.hinges == tuple(f"{b}_{a}" for b in M.BODY_NAMES[1:] for a in "xyz")
    assert torch.equal(spec_full.dof_index, torch.arange(156))
    for hand in M.HANDS:
        m, spec = M.load_model(hand), M.load_spec(hand)
        assert (m.nq, m.nv, m.nu) == SIZES[hand] == (spec.nq, spec.nv, spec.num_dofs)
        assert [m.body(i).name for i in range(m.nbody)] == [full.body(i).name for i in range(full.nbody)]
        assert np.array_equal(m.geom_size, full.geom_size) and np.array_equal(m.geom_bodyid, full.geom_bodyid)
        assert np.allclose(m.body_mass, full.body_mass) and m.opt.timestep == full.opt.timestep
        # Each kept hinge is the full model's hinge of that name, and picks that column of the full layout.
        assert [spec_full.hinges[i] for i in spec.dof_index] == list(spec.hinges)
        assert len(spec.sha256) == 64 and spec.path == M.model_path(hand)
        dropped = set(spec_full.hinges) - set(spec.hinges)
        fingers = {n for n in dropped if n[2:-3] in ("Index", "Middle", "Pinky", "Ring", "Thumb")}
        assert dropped == fingers
        for body in M.BODY_NAMES[1:]:
            assert "".join(h[-1] for h in spec.hinges if h[:-2] == body) == make_model.kept_hinges(body, hand)
    assert make_model.kept_hinges("R_Index1", "anatomical") == "yz"
    assert make_model.kept_hinges("L_Ring3", "hinge1") == "z" and make_model.kept_hinges("R_Thumb1", "hinge1") == "xyz"
    assert M.load_spec("full") is M.load_spec("full")  # read once
    with pytest.raises(ValueError, match="unknown hand 'claw'"):
        M.load_spec("claw")


def test_rigid_finger_pose_is_the_data_median(all_motions):
    """The rigid hand's fingers are flat: more than half of the frames hold every finger joint exactly there."""
    angles = all_motions.table.dof_pos.reshape(-1, 52, 3)  # zero exactly where the exp map is zero
    fingers = [i - 1 for i, n in enumerate(M.BODY_NAMES) if n[2:-1] in ("Index", "Middle", "Pinky", "Ring", "Thumb")]
    flat = (angles[:, fingers] == 0).all(-1).float().mean(0)  # (30,) share of frames with that joint at zero
    assert len(fingers) == 30 and float(flat.min()) > 0.7
    assert make_model.RIGID_FINGER_QUAT == (1.0, 0.0, 0.0, 0.0)
    m = M.load_model("rigid")
    assert all(np.array_equal(m.body(n).quat, [1, 0, 0, 0]) for n in np.array(M.BODY_NAMES)[[f + 1 for f in fingers]])


def test_model_layout_and_ball():
    m = M.load_model("full")
    assert (m.nq, m.nv, m.nu) == (170, 168, 156)
    assert m.body(M.BALL_BODY).name == "ball"
    assert abs(m.body_mass[M.BALL_BODY] - 0.6) < 1e-9  # FIBA: 567-650 g
    ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
    assert abs(m.geom_size[ball, 0] - 0.12) < 1e-9
    assert abs(m.opt.timestep - 1 / 120) < 1e-9
    # PD gains are the reference's: hips kp 500 / kd 50, fingers 100 / 10.
    hip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "L_Hip_x")
    assert m.actuator_gainprm[hip, 0] == 500 and m.dof_damping[m.jnt_dofadr[m.actuator_trnid[hip, 0]]] == 50
    finger = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "R_Index2_z")
    assert m.actuator_gainprm[finger, 0] == 100
    assert 60 < m.body_mass[1 : M.BALL_BODY].sum() < 75
    # Without self-collision no two humanoid geoms can touch; with it they can.
    hum = np.flatnonzero((m.geom_bodyid >= 1) & (m.geom_bodyid <= 53))
    ct, ca = m.geom_contype[hum], m.geom_conaffinity[hum]
    assert not np.any((ct[:, None] & ca[None, :]) != 0)
    m2 = M.load_model("full", self_collision=True)
    assert np.all((m2.geom_contype[hum] & m2.geom_conaffinity[hum]) != 0)


def test_expmap_dof_mapping_both_ways_on_the_data(all_motions):
    x = torch.cat([load_clip(f).double() for f in all_motions.files[::10]])
    v = x[:, JOINT_ROT].reshape(-1, 52, 3)
    dof = M.expmap_to_dof(v)
    back = M.dof_to_expmap(dof)
    err = rotations.quat_angle(rotations.quat_from_expmap(back), rotations.quat_from_expmap(v))
    assert err.max() < 1e-6
    # And from hinge angles: a random pose survives the trip through exponential maps.
    gen = torch.Generator().manual_seed(0)
    e = (torch.rand(64, 156, generator=gen, dtype=torch.float64) - 0.5) * torch.tensor([2 * np.pi, np.pi, 2 * np.pi],
                                                                                        dtype=torch.float64).repeat(52)
    assert torch.allclose(M.expmap_to_dof(M.dof_to_expmap(e)), e, atol=1e-6)


def test_kinematic_fidelity_over_all_clips(all_motions):
    """Forward kinematics of each frame's joint values against the recorded body positions (all 101 clips)."""
    t = all_motions.table
    err = (t.body_pos - t.body_pos_recorded).norm(dim=-1)  # (frames, 53)
    mean, pelvis, p99 = float(err.mean()), float(err[:, 0].mean()), float(err.flatten().quantile(0.99))
    print(f"\nkinematic fidelity over {err.shape[0]} frames: mean {100 * mean:.2f} cm, pelvis {100 * pelvis:.2f} cm, "
          f"99th percentile {100 * p99:.2f} cm")
    assert mean <= 0.035


@pytest.fixture(scope="module")
def full_fk(all_motions):
    """Every frame's full-layout qpos and the full model's body positions."""
    t = all_motions.table
    qpos = torch.cat((t.root_pos, t.root_quat, t.dof_pos), dim=1).double()  # (F, 163): the full layout, no ball
    return qpos, M.forward_kinematics(M.load_model("full"), torch.cat((qpos, torch.zeros(len(qpos), 7)), 1))[0]


# Bounds on what each hand loses (cm), mean over all frames: all bodies and the ten fingertip bodies (X3)
# against the recorded positions, and the fingertips against the full hand's forward kinematics.
FIDELITY_BOUNDS = {"full": (3.35, 4.8, 0.0), "anatomical": (3.35, 4.8, 0.1), "hinge1": (3.35, 4.8, 0.4),
                   "rigid": (3.35, 5.0, 1.1)}


@pytest.mark.parametrize("hand", M.HANDS)
def test_kinematic_fidelity_of_each_hand(hand, all_motions, full_fk):
    """The data mapped onto a hand by hinge name (dropped angles zero, rigid fingers in the MJCF's pose)."""
    qpos_full, body_full = full_fk
    spec = M.load_spec(hand)
    qpos = torch.zeros(len(qpos_full), spec.nq, dtype=torch.float64)
    qpos[:, :7] = qpos_full[:, :7]
    qpos[:, spec.dof_qpos] = qpos_full[:, 7:][:, spec.dof_index]
    body = M.forward_kinematics(M.load_model(hand), qpos)[0]
    err = 100 * (body - all_motions.table.body_pos_recorded.double()).norm(dim=-1)  # cm, (F, 53)
    lost = 100 * (body - body_full).norm(dim=-1)
    tips = lost[:, FINGER_TIPS]
    print(f"\n{hand} hand ({spec.num_dofs} hinges): against the recording, all bodies {err.mean():.2f} cm, fingertips "
          f"{err[:, FINGER_TIPS].mean():.2f} cm; against the full hand, all bodies {lost.mean():.3f} cm, fingertips "
          f"{tips.mean():.2f} cm (99th percentile {tips.flatten().quantile(0.99):.2f}, max {tips.max():.2f})")
    bound_all, bound_tips, bound_lost = FIDELITY_BOUNDS[hand]
    assert err.mean() <= bound_all and err[:, FINGER_TIPS].mean() <= bound_tips and tips.mean() <= bound_lost + 1e-6
    # Only the fingers move: the other 23 bodies are where the full hand puts them.
    assert float(lost[:, [i for i in range(53) if i not in M.LEFT_HAND[1:] + M.RIGHT_HAND[1:]]].max()) < 1e-6


@pytest.mark.parametrize("hand", M.HANDS)
def test_hand_ball_contact_agrees_with_the_labels_on_the_layup(hand):
    """In the layup's own poses a hand touches the ball (within the contact margin) where the label says so."""
    motions = MotionSet(DATA / "layup", hand=hand)
    T = int(motions.lengths[0])
    sim = make_sim(SimConfig(backend="mujoco", hand=hand), T, "cpu")
    frames = torch.arange(T)
    sim.reset(frames, *motions.state(torch.zeros(T, dtype=torch.long), frames))
    sim.forward()
    agree = int((sim.hand_ball_contact.any(-1) == (motions.table.contact > 0.5)).sum())
    print(f"\n{hand} hand: hand-ball contact agrees with the label in {agree} of the layup's {T} frames")
    assert agree >= 150


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_warp"])
def test_ball_rebound_meets_fiba(backend):
    """Dropped from 1.8 m (bottom of the ball) it rebounds to 1.2-1.4 m (top of the ball)."""
    sim = make_sim(SimConfig(backend=backend), 2, "cpu")
    qpos = sim.qpos.clone()
    qpos[:, 0:3] = torch.tensor([5.0, 5.0, 1.0])  # the humanoid out of the way
    qpos[:, sim.spec.ball_qpos.start : sim.spec.ball_qpos.start + 3] = torch.tensor([0.0, 0.0, 1.8 + 0.12])
    sim.reset(torch.arange(2), qpos, torch.zeros_like(sim.qvel))
    heights, touched = [], False
    for _ in range(150):  # 2.5 s
        sim.step()
        touched |= bool(sim.ball_floor_contact[0])
        heights.append(float(sim.ball_pos_w[0, 2]))
    z = np.array(heights)
    low = int(np.argmin(z[:60]))
    top = z[low : low + 60].max() + 0.12
    print(f"\n{backend}: rebound to {top:.3f} m (top of the ball), lowest centre {z[low]:.3f} m")
    assert touched
    assert 1.2 <= top <= 1.4


# --- the wrists' gains (Physics.wrist_kp, Physics.wrist_kd) ----------------------------------------------------
WRIST_HINGES = [f"{w}_{a}" for w in M.WRISTS for a in "xyz"]


@pytest.mark.parametrize("hand", ["full", "rigid"])
def test_wrist_gains_change_exactly_the_wrists_and_zero_keeps_the_mjcf(hand):
    plain = mujoco.MjModel.from_xml_path(str(M.model_path(hand)))  # the MJCF as written
    base = M.load_model(hand)
    joints, actuators = M.wrist_joints(base)
    assert [base.joint(j).name for j in joints] == [base.actuator(a).name for a in actuators] == WRIST_HINGES
    dofs = base.jnt_dofadr[joints]
    assert np.all(base.actuator_gainprm[actuators, 0] == 100.0) and np.all(base.dof_damping[dofs] == 10.0)
    for name in ("actuator_gainprm", "actuator_biasprm", "dof_damping"):  # 0, the default: the MJCF's gains
        assert np.array_equal(getattr(base, name), getattr(plain, name)), name
    stiff = M.load_model(hand, physics=M.Physics(wrist_kp=300.0, wrist_kd=30.0))
    changed = lambda name: np.flatnonzero((getattr(stiff, name) != getattr(base, name)).reshape(  # noqa: E731
        len(getattr(base, name)), -1).any(1)).tolist()
    assert changed("actuator_gainprm") == changed("actuator_biasprm") == actuators.tolist()
    assert changed("dof_damping") == dofs.tolist()
    assert np.all(stiff.actuator_gainprm[actuators, 0] == 300.0)
    assert np.all(stiff.actuator_biasprm[actuators, :3] == [0.0, -300.0, 0.0])  # a position actuator's kp
    assert np.all(stiff.dof_damping[dofs] == 30.0)
    kp_only = M.load_model(hand, physics=M.Physics(wrist_kp=300.0))
    assert np.array_equal(kp_only.actuator_gainprm, stiff.actuator_gainprm)
    assert np.array_equal(kp_only.dof_damping, base.dof_damping)
    kd_only = M.load_model(hand, physics=M.Physics(wrist_kd=30.0))
    assert np.array_equal(kd_only.actuator_gainprm, base.actuator_gainprm)
    assert np.array_equal(kd_only.dof_damping, stiff.dof_damping)


def _wrist_response(physics: M.Physics, motions: MotionSet, steps: int = 4) -> tuple[float, float]:
    """From the layup's first frame (the ball moved away), every other hinge holding its angle: the mean distance
    (rad) of the six wrist hinges to their targets `steps` control steps after the targets jump by 0.4 rad (world
    0), and the largest deflection of the right wrist by a torque impulse of 0.1 N m s on its body (world 1
    against world 0 held at the pose, targets unchanged)."""
    sim = make_sim(SimConfig(backend="mujoco", hand="rigid", physics=physics), 3, "cpu")
    zero = torch.zeros(3, dtype=torch.long)
    qpos, qvel = motions.state(zero, zero)
    qpos[:, sim.spec.ball_qpos.start : sim.spec.ball_qpos.start + 3] = torch.tensor([9.0, 9.0, 5.0])
    sim.reset(torch.arange(3), qpos, qvel)
    joints, _ = M.wrist_joints(sim.model)
    cols = torch.as_tensor(sim.model.jnt_dofadr[joints] - 6)  # the wrists' hinges among the actuated ones
    target = qpos[:, sim.spec.dof_qpos].clone()
    sim.ctrl[:] = target
    sim.ctrl[0, cols] += 0.4
    right = sim.model.body("R_Wrist").id
    sim._xfrc[2, right, 3:] = 2.08 / 3**0.5  # 2.08 N m for 3 control steps (0.05 s)
    dq = sim.spec.dof_qpos
    bend = 0.0
    for k in range(max(steps, 12)):
        if k == 3:
            sim._xfrc[2, right, 3:] = 0.0
        sim.step()
        if k + 1 == steps:
            lag = float((sim.qpos[0, dq][cols] - sim.ctrl[0, cols]).abs().mean())
        bend = max(bend, float((sim.qpos[2, dq][cols[3:]] - sim.qpos[1, dq][cols[3:]]).abs().max()))
    return lag, bend


def test_a_stiffer_wrist_follows_its_target_sooner_and_bends_less():
    """The hand is light, so the wrist's PD is overdamped: after a target step it closes the gap as exp(-t kp / kd)
    (the MJCF's 100 and 10: 0.1 s). kp alone shortens that; kp and kd together keep it, and stiffen the wrist
    against a push (the lever of Physics.wrist_kp's docstring)."""
    motions = MotionSet(DATA / "layup", hand="rigid")
    steps, dt = 4, 2 / 120
    soft_lag, soft_bend = _wrist_response(M.Physics(palm=True), motions, steps)
    assert soft_lag == pytest.approx(0.4 * np.exp(-steps * dt * 100.0 / 10.0), rel=0.1)  # 0.20 rad
    fast_lag, _ = _wrist_response(M.Physics(palm=True, wrist_kp=300.0), motions, steps)
    assert fast_lag < 0.3 * soft_lag  # about 0.04 rad
    stiff_lag, stiff_bend = _wrist_response(M.Physics(palm=True, wrist_kp=300.0, wrist_kd=30.0), motions, steps)
    assert stiff_lag == pytest.approx(soft_lag, rel=0.1)
    assert 0.001 < stiff_bend < 0.5 * soft_bend < 0.01  # radians: half a degree at the MJCF's gains


def test_wrist_gains_are_recorded_and_older_files_load_the_mjcf_gains(tmp_path):
    from skillmimic.checkpoint import CheckpointError, save_atomic
    from skillmimic.envs.observations import SKILL_OBS_DIM
    from skillmimic.evaluate import evaluation_config
    from skillmimic.policy import SkillPolicy, load_policy, policy_file

    physics = M.Physics(palm=True, wrist_kp=300.0, wrist_kd=30.0)
    assert M.Physics.from_dict(physics.as_dict()) == physics
    spec = M.load_spec("rigid")
    p = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, hand="rigid", model_sha256=spec.sha256)

    def save(name, recorded):
        save_atomic(policy_file(p.actor, p.obs_norm, p.num_obs, p.num_actions, (8,), 1.5, 2.0, hand="rigid",
                                model_sha256=spec.sha256, physics=recorded), tmp_path / name)
        return tmp_path / name

    loaded = load_policy(save("stiff.pt", physics.as_dict()))
    assert loaded.physics == physics and evaluation_config(loaded, 10).physics == physics  # evaluated with them
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'bad.pt'}: physics wrist_kd -1.0: must be 0"):
        load_policy(save("bad.pt", {**physics.as_dict(), "wrist_kd": -1.0}))
    old = M.Physics.from_dict({"ball_mass": 0.6, "palm": True, "hand_margin": 0.0})  # a round 6 policy file
    assert (old.wrist_kp, old.wrist_kd) == (0.0, 0.0)
    m, plain = M.load_model("rigid", physics=old), M.load_model("rigid", physics=M.Physics(palm=True))
    assert np.array_equal(m.actuator_gainprm, plain.actuator_gainprm) and np.array_equal(m.dof_damping,
                                                                                         plain.dof_damping)


@pytest.mark.parametrize("field, value", [("wrist_kp", -300.0), ("wrist_kd", -1.0), ("wrist_kp", float("inf")),
                                          ("wrist_kd", float("nan"))])
def test_a_bad_wrist_gain_is_refused_in_one_line(field, value):
    with pytest.raises(UserError, match=f"^physics {field} {value}: must be 0 \\(keep the MJCF's\\) or a positive"):
        M.Physics(**{field: value})
