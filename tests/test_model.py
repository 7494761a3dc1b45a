import importlib.util

import mujoco
import numpy as np
import pytest
import torch

from paths import REFERENCE, ROOT
from skillmimic import model as M
from skillmimic import rotations
from skillmimic.motion import JOINT_ROT, load_clip
from skillmimic.sim import SimConfig, make_sim


def test_committed_model_is_what_the_generator_writes():
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} not here")
    spec = importlib.util.spec_from_file_location("make_model", ROOT / "tools" / "make_model.py")
    make_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_model)
    assert make_model.make_model(str(REFERENCE)) == M.MODEL_PATH.read_text()


def test_model_layout_and_ball():
    m = M.load_model()
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
    m2 = M.load_model(self_collision=True)
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


@pytest.mark.parametrize("backend", ["mujoco", "mujoco_warp"])
def test_ball_rebound_meets_fiba(backend):
    """Dropped from 1.8 m (bottom of the ball) it rebounds to 1.2-1.4 m (top of the ball)."""
    sim = make_sim(SimConfig(num_worlds=2, backend=backend, device="cpu"))
    qpos = sim.qpos.clone()
    qpos[:, 0:3] = torch.tensor([5.0, 5.0, 1.0])  # the humanoid out of the way
    qpos[:, M.BALL_QPOS.start : M.BALL_QPOS.start + 3] = torch.tensor([0.0, 0.0, 1.8 + 0.12])
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
