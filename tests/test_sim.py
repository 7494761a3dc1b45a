"""The simulator interface on both backends (plain MuJoCo, and MuJoCo Warp on its CPU device)."""

import mujoco
import pytest
import torch

from paths import DATA
from skillmimic import model as M
from skillmimic import rotations
from skillmimic.motion import MotionSet
from skillmimic.sim import SimConfig, make_sim

# (backend, device); MuJoCo Warp on a GPU joins when there is one (run by hand on the GPU machine).
BACKENDS = [("mujoco", "cpu"), ("mujoco_warp", "cpu")]
if torch.cuda.is_available():
    BACKENDS.append(("mujoco_warp", "cuda"))
# Backend agreement: from the same reference states with the same PD targets, body positions after 60 control
# steps (1 s) of plain MuJoCo (float64) and MuJoCo Warp (float32) differ by at most this much.
AGREEMENT_TOL_M = 0.001


def _sim(backend, n=4, device="cpu", **kw):
    return make_sim(SimConfig(backend=backend, **kw), n, device)


def _start(motions, n):
    """n frames spread over the layup clip, each far enough from its end for 60 steps."""
    motion_ids = torch.zeros(n, dtype=torch.long)
    frame_ids = torch.linspace(0, int(motions.lengths[0]) - 62, n).long()
    return motion_ids, frame_ids


def _rollout(sim, motions, motion_ids, frame_ids, steps):
    sim.reset(torch.arange(sim.num_worlds), *motions.state(motion_ids, frame_ids))
    out = []
    for k in range(steps):
        sim.ctrl[:] = motions.frames(motion_ids, frame_ids + k + 1).dof_pos.to(sim.device)
        sim.step()
        out.append(sim.body_pos_w.cpu().clone())  # .cpu() of a CPU tensor is the tensor itself
    return torch.stack(out)  # (steps, N, 53, 3)


@pytest.mark.parametrize("backend, device", BACKENDS[1:])
def test_backends_agree_over_60_control_steps(backend, device):
    # On the data's own positions: there the engines agree to 0.3 mm. With the ball moved out of the hands
    # (MotionSet's default), world 0 parts by 7-11 mm from step 34, where the layup's ball leaves the hand, a
    # contact whose outcome float rounding decides; the engines are the same, the start is more sensitive.
    motions = MotionSet(DATA / "layup", consistent="off")
    mid, fid = _start(motions, 4)
    a = _rollout(_sim("mujoco"), motions, mid, fid, 60)
    b = _rollout(_sim(backend, device=device), motions, mid, fid, 60)
    diff = (a - b).norm(dim=-1)
    print(f"\nbackend agreement, {backend} on {device} against mujoco: max body-position difference "
          f"{1000 * float(diff.max()):.3f} mm after 60 steps (mean {1000 * float(diff.mean()):.4f} mm)")
    assert float(diff.max()) < AGREEMENT_TOL_M


def test_backends_agree_with_the_heavy_ball_and_the_palm():
    """The physical options change masses after compiling; the constants that follow them are recomputed, or the
    engines part (with a 7.2 kg ball whose subtree mass stayed 0.6 kg: 4.5 mm after one step, 0.5 m after 60)."""
    motions = MotionSet(DATA / "layup", hand="rigid")
    mid, fid = _start(motions, 4)
    physics = M.Physics(ball_mass=7.2, palm=True)
    a = _rollout(_sim("mujoco", hand="rigid", physics=physics), motions, mid, fid, 60)
    b = _rollout(_sim("mujoco_warp", hand="rigid", physics=physics), motions, mid, fid, 60)
    assert float((a - b).norm(dim=-1).max()) < AGREEMENT_TOL_M


def test_the_wrists_gains_reach_mujoco_warp_and_the_engines_agree():
    """MuJoCo Warp's model is made from the compiled MjModel (mujoco_warp.put_model), so the wrists' gains that
    skillmimic.model.load_model writes into it are Warp's too: both engines step alike with them (0.001 mm in half
    a second), and centimetres apart from the MJCF's gains. (Past step 34, where the layup's ball leaves the hand,
    world 0 parts between the engines with any gains, the MJCF's too: test_backends_agree_over_60_control_steps.)"""
    import warp as wp

    motions = MotionSet(DATA / "layup", hand="rigid")
    mid, fid = _start(motions, 4)
    physics = M.Physics(palm=True, wrist_kp=300.0, wrist_kd=20.0)
    warp = _sim("mujoco_warp", hand="rigid", physics=physics)
    joints, actuators = M.wrist_joints(warp.model)
    gain = wp.to_torch(warp._m.actuator_gainprm)[0]  # (nu, 10) of the one model all worlds share
    bias = wp.to_torch(warp._m.actuator_biasprm)[0]
    damping = wp.to_torch(warp._m.dof_damping)[0]  # (nv,)
    assert torch.all(gain[actuators, 0] == 300.0) and torch.all(bias[actuators, 1] == -300.0)
    assert torch.all(damping[warp.model.jnt_dofadr[joints]] == 20.0)
    assert float(gain[:, 0].max()) == 1000.0 and int((gain[:, 0] == 300.0).sum()) == 6 + 6  # the elbows' and these
    a = _rollout(_sim("mujoco", hand="rigid", physics=physics), motions, mid, fid, 30)
    b = _rollout(warp, motions, mid, fid, 30)
    c = _rollout(_sim("mujoco_warp", hand="rigid", physics=M.Physics(palm=True)), motions, mid, fid, 30)
    assert float((a - b).norm(dim=-1).max()) < AGREEMENT_TOL_M < 5 * AGREEMENT_TOL_M < float((b - c).norm(dim=-1).max())


@pytest.mark.parametrize("hand", [h for h in M.HANDS if h != "full"])
def test_each_hand_steps_alike_on_both_engines(hand):
    """Every other hand loads a clip in its own layout and steps the same on plain MuJoCo and MuJoCo Warp. Half a
    second: then world 0 falls hard (fingers centimetres into the floor), an impact whose outcome differs by up to
    centimetres between the engines for some hands (float rounding; 0.3 mm for the full hand)."""
    motions = MotionSet(DATA / "layup", hand=hand)
    mid, fid = _start(motions, 4)
    a = _rollout(_sim("mujoco", hand=hand), motions, mid, fid, 30)
    b = _rollout(_sim("mujoco_warp", hand=hand), motions, mid, fid, 30)
    assert a.shape == (30, 4, 53, 3) and motions.state(mid, fid)[0].shape == (4, M.load_spec(hand).nq)
    diff = (a - b).norm(dim=-1)
    print(f"\n{hand} hand: max body-position difference {1000 * float(diff.max()):.3f} mm after 30 steps")
    assert float(diff.max()) < AGREEMENT_TOL_M


def test_constraint_overflow_flags_the_world(layup_motions):
    """A world whose constraint rows do not fit njmax loses some (MuJoCo Warp drops them): it is flagged."""
    sim = _sim("mujoco_warp", n=2, njmax=8)
    qpos, qvel = layup_motions.state(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    qpos[1, 2] += 3.0  # world 1 in the air with its ball far away: no contact at all
    qpos[1, sim.spec.ball_qpos.start : sim.spec.ball_qpos.start + 3] = torch.tensor([9.0, 9.0, 5.0])
    sim.reset(torch.arange(2), qpos, qvel)
    sim.ctrl[:] = qpos[:, sim.spec.dof_qpos]
    sim.step()  # world 0 stands: its feet alone need more than 8 rows
    assert sim.unstable.tolist() == [True, False]
    sim.reset(torch.arange(2), qpos, qvel)
    sim.step()  # the flag is this step's, not a memory of the last one
    assert sim.unstable.tolist() == [True, False]
    sim.reset(torch.tensor([0]), qpos[1:], qvel[1:])
    sim.step()
    assert not sim.unstable.any()


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_reset_puts_worlds_in_the_reference_pose(backend, device, layup_motions):
    sim = _sim(backend, device=device)
    mid, fid = _start(layup_motions, 4)
    sim.reset(torch.arange(4), *layup_motions.state(mid, fid))
    f = layup_motions.frames(mid, fid)
    assert torch.allclose(sim.body_pos_w.cpu(), f.body_pos, atol=1e-4)
    assert torch.allclose(sim.ball_pos_w.cpu(), f.ball_pos, atol=1e-5)
    assert sim.body_pos_w.shape == (4, 53, 3) and sim.body_quat_w.shape == (4, 53, 4)
    assert sim.body_lin_vel_w.shape == (4, 53, 3) and sim.hand_ball_contact.shape == (4, 2)
    # Body velocities of the reference state follow the reference's finite differences.
    assert float((sim.body_lin_vel_w.cpu() - f.body_vel).norm(dim=-1).mean()) < 0.05


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_subset_reset_leaves_other_worlds_alone(backend, device, layup_motions):
    mid, fid = _start(layup_motions, 4)
    a, b = _sim(backend, device=device), _sim(backend, device=device)
    for s in (a, b):
        s.reset(torch.arange(4), *layup_motions.state(mid, fid))
        for k in range(5):
            s.ctrl[:] = layup_motions.frames(mid, fid + k + 1).dof_pos.to(device)
            s.step()
    ids = torch.tensor([1, 3])
    new_q, new_v = layup_motions.state(mid[ids], fid[ids] + 20)
    kept_q, kept_v, kept_pos = a.qpos[[0, 2]].clone(), a.qvel[[0, 2]].clone(), a.body_pos_w[[0, 2]].clone()
    a.reset(ids, new_q, new_v)
    assert torch.equal(a.qpos[[0, 2]], kept_q) and torch.equal(a.qvel[[0, 2]], kept_v)
    assert torch.allclose(a.body_pos_w[[0, 2]], kept_pos, atol=1e-6)  # recomputed from the same qpos
    assert torch.allclose(a.qpos[ids.to(device)].cpu(), new_q.float(), atol=1e-6)
    for s in (a, b):
        s.step()
    # (GPU solvers sum in no fixed order, so two identical GPU runs agree closely but not bit for bit.)
    assert torch.allclose(a.body_pos_w[[0, 2]], b.body_pos_w[[0, 2]], atol=1e-4)


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_non_finite_world_is_flagged_and_others_untouched(backend, device, layup_motions):
    mid, fid = _start(layup_motions, 4)
    a, b = _sim(backend, device=device), _sim(backend, device=device)
    for s in (a, b):
        s.reset(torch.arange(4), *layup_motions.state(mid, fid))
    a.qvel[2, 10] = float("nan")  # written in place, as any user code may
    a.qpos[1, 30] = float("inf")
    for s in (a, b):
        s.ctrl[:] = layup_motions.frames(mid, fid + 1).dof_pos.to(device)
        s.step()
    assert a.unstable.tolist() == [False, True, True, False]
    assert not b.unstable.any()
    assert torch.isfinite(a.qpos).all() and torch.isfinite(a.body_pos_w).all()
    assert torch.allclose(a.body_pos_w[[0, 3]], b.body_pos_w[[0, 3]], atol=1e-6)
    # An exploding speed is flagged too.
    a.qvel[0, 20] = 1e4
    a.step()
    assert bool(a.unstable[0])
    # The flagged worlds reset and run on.
    ids = torch.tensor([0, 1, 2])
    a.reset(ids, *layup_motions.state(mid[ids], fid[ids]))
    assert not a.unstable.any()
    a.step()
    assert not a.unstable.any() and torch.isfinite(a.body_pos_w).all()


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_contact_flags_name_exact_pairs(backend, device, layup_motions):
    sim = _sim(backend, n=3, device=device)
    mid = fid = torch.zeros(3, dtype=torch.long)  # the layup's first frame: standing
    qpos, qvel = layup_motions.state(mid, fid)
    qvel.zero_()
    sim.reset(torch.arange(3), qpos, qvel)
    # World 0: the ball inside the right hand's middle finger; world 1: resting on the floor far away;
    # world 2: in the air, touching nothing.
    finger = M.BODY_NAMES.index("R_Middle2")
    ball = slice(sim.spec.ball_qpos.start, sim.spec.ball_qpos.start + 3)
    qpos[0, ball] = sim.body_pos_w[0, finger].cpu() + torch.tensor([0.0, 0.0, 0.1])
    qpos[1, ball] = torch.tensor([4.0, 4.0, 0.1187])  # about where it rests
    qpos[2, ball] = torch.tensor([4.0, 4.0, 2.0])
    sim.reset(torch.arange(3), qpos, qvel)
    assert not sim.body_floor_contact.any()  # reset leaves collision detection to the next step ...
    sim.forward()  # ... or to forward()
    assert sim.hand_ball_contact.tolist() == [[False, True], [False, False], [False, False]]
    touching = set(sim.body_ball_contact[0].nonzero()[:, 0].tolist())
    right_arm = set(range(M.BODY_NAMES.index("R_Elbow"), M.BODY_NAMES.index("R_Thumb3") + 1))
    assert touching & set(M.RIGHT_HAND) and touching <= right_arm
    assert sim.ball_floor_contact.tolist() == [False, True, False]
    # The humanoid stands: its feet touch the floor, its head does not.
    feet = list(M.FEET)
    assert sim.body_floor_contact[:, feet].any(1).all()
    assert not sim.body_floor_contact[:, M.BODY_NAMES.index("Head")].any()
    # A step keeps them: the ball still rests on the floor in world 1, the feet still stand.
    sim.ctrl[:] = qpos[:, sim.spec.dof_qpos].to(device)
    sim.step()
    assert bool(sim.ball_floor_contact[1]) and sim.body_floor_contact[:, feet].any(1).all()


def test_body_velocities_match_finite_differences(layup_motions):
    sim = _sim("mujoco", n=2)
    mid, fid = _start(layup_motions, 2)
    sim.reset(torch.arange(2), *layup_motions.state(mid, fid))
    sim.ctrl[:] = layup_motions.frames(mid, fid + 1).dof_pos
    sim.step()
    m, d = sim.model, sim.datas[1]
    # Move the state on by qvel for a tiny time and difference the body poses.
    eps = 1e-7
    q1 = d.qpos.copy()
    mujoco.mj_integratePos(m, q1, d.qvel, eps)
    d1 = mujoco.MjData(m)
    d1.qpos[:] = q1
    mujoco.mj_kinematics(m, d1)
    lin = torch.from_numpy((d1.xpos - d.xpos) / eps)
    ang = rotations.angular_velocity(torch.from_numpy(d.xquat.copy()), torch.from_numpy(d1.xquat.copy()), eps)
    assert torch.allclose(sim.body_lin_vel_w[1].double(), lin[1 : M.BALL_BODY], atol=1e-3)
    assert torch.allclose(sim.body_ang_vel_w[1].double(), ang[1 : M.BALL_BODY], atol=1e-3)
    assert torch.allclose(sim.ball_lin_vel_w[1].double(), lin[M.BALL_BODY], atol=1e-3)
    assert torch.allclose(sim.ball_ang_vel_w[1].double(), ang[M.BALL_BODY], atol=1e-3)


def test_warp_tensors_are_zero_copy_views():
    sim = _sim("mujoco_warp", n=2)
    sim.ctrl[1, 5] = 0.25
    assert float(sim._d.ctrl.numpy()[1, 5]) == 0.25
    assert sim.body_pos_w.data_ptr() == sim._xpos.data_ptr() + 3 * 4  # body 1 of (N, 55, 3) float32


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown simulator backend 'physx'"):
        make_sim(SimConfig(backend="physx"), device="cpu")
    with pytest.raises(ValueError, match="runs on the CPU|torch sees no GPU"):  # the latter where there is none
        make_sim(SimConfig(backend="mujoco"), device="cuda:0")
