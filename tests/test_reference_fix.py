"""The reference fix (skillmimic.reference_fix): its geometry on hand-set inputs, and on the data, checked with
MuJoCo's own collision: no body in the floor, the ball out of the hands; 'off' keeps the old tables."""

import sys

import mujoco
import numpy as np
import pytest
import torch

from skillmimic import model as M
from skillmimic import reference_fix as RF
from skillmimic.motion import MotionSet
from paths import DATA, ROOT


def test_capsule_distance_and_push_on_hand_set_capsules():
    # Two capsules of radius 0.01 along x at z = 0.5, one per hand, 0.2 m apart in y; a ball of radius 0.12.
    a = torch.tensor([[[-0.1, 0.0, 0.5], [-0.1, 0.2, 0.5]]], dtype=torch.float64)
    b = a + torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64)
    radius = torch.tensor([0.01, 0.01], dtype=torch.float64)
    left = torch.tensor([True, False])
    ball = torch.tensor([[0.05, -0.1, 0.5]], dtype=torch.float64)  # 0.1 from the first axis: 3 cm inside
    dist, normal = RF.capsule_distance(ball, a, b, radius + 0.12)
    assert torch.allclose(dist[0, 0], torch.tensor(-0.03, dtype=torch.float64))
    assert torch.allclose(normal[0, 0], torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    out = RF.push_ball_out(ball, a, b, radius, left, 0.12)
    assert torch.allclose(out, torch.tensor([[0.05, -0.13, 0.5]], dtype=torch.float64))
    # Squeezed between the two (0.2 apart, 0.26 needed): both penetrate alike, 3 cm each, and it stays between.
    mid = torch.tensor([[0.0, 0.08, 0.5]], dtype=torch.float64)
    out = RF.push_ball_out(mid, a, b, radius, left, 0.12)
    d, _ = RF.capsule_distance(out, a, b, radius + 0.12)
    assert torch.allclose(d, torch.full((1, 2), -0.03, dtype=torch.float64), atol=1e-6)
    # Pushed down towards the floor, it stops on it.
    low = torch.tensor([[0.0, 0.0, 0.45]], dtype=torch.float64)
    out = RF.push_ball_out(low, a[:, :1], b[:, :1], radius[:1], left[:1], 0.12)
    assert out[0, 2] >= 0.12 - 1e-12


def test_smooth_lift_covers_the_need_without_steps():
    depth = torch.tensor([0.0, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    lift = RF.smooth_lift(depth, 2)
    assert (lift >= depth - 1e-12).all()
    assert (lift[1:] - lift[:-1]).abs().max() <= 0.03 / 5 + 1e-12  # spread over the window: no jump
    assert torch.equal(RF.smooth_lift(depth, 0), depth)


def test_ball_lift_rests_on_the_floor_and_rides_with_the_humanoid_above():
    lift = torch.full((4,), 0.03, dtype=torch.float64)
    z = torch.tensor([0.11, 0.12, 0.27, 1.0], dtype=torch.float64)  # sunk 1 cm, resting, half the band, high
    out = RF.ball_lift(z, lift, 0.12, band=0.3)
    assert torch.allclose(out, torch.tensor([0.01, 0.0, 0.015, 0.03], dtype=torch.float64))


def test_floor_depth_of_hand_set_geoms():
    m = M.load_model("rigid")
    g = RF.humanoid_geoms(m)
    G = len(g.body)
    centre = torch.zeros(1, G, 3, dtype=torch.float64)
    centre[..., 2] = 1.0  # every geom high up ...
    rot = torch.eye(3, dtype=torch.float64).expand(1, G, 3, 3).clone()
    box = int(torch.nonzero(g.type == RF.BOX)[0])
    centre[0, box, 2] = 0.01  # ... but one box, upright, whose half-height is its size[2]
    assert torch.allclose(RF.floor_depth(centre, rot, g), (g.size[box, 2] - 0.01).clamp(min=0).reshape(1))
    centre[0, box, 2] = 1.0
    assert float(RF.floor_depth(centre, rot, g)) == 0.0


def _mujoco_depths(motions, frames):
    """Per frame: the deepest humanoid geom in the floor and the ball in a hand geom (m, >= 0), by MuJoCo."""
    m = M.load_model(motions.spec.hand)
    d = mujoco.MjData(m)
    body = M.geom_body_table(m).numpy()
    human, hand = (body >= 0) & (body < M.NUM_BODIES), np.isin(body, M.LEFT_HAND + M.RIGHT_HAND)
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
    qpos, _ = motions.state(torch.zeros(len(frames), dtype=torch.long), frames)
    out = np.zeros((len(frames), 2))
    for i, q in enumerate(qpos.double().numpy()):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        g, dist = d.contact.geom[: d.ncon], d.contact.dist[: d.ncon]
        for j, mask in enumerate(((g == floor).any(1) & human[g].any(1), (g == ball).any(1) & hand[g].any(1))):
            out[i, j] = max(0.0, -float(dist[mask].min())) if mask.any() else 0.0
    return out


@pytest.fixture(scope="module")
def layup_three_ways():
    return {mode: MotionSet(DATA / "layup", hand="rigid", consistent=mode) for mode in ("off", "ball", "all")}


def test_fixed_layup_frames_hold_in_mujoco(layup_three_ways):
    frames = torch.arange(int(layup_three_ways["off"].lengths[0]))
    before = _mujoco_depths(layup_three_ways["off"], frames)
    assert before[:, 0].max() > 0.03 and before[:, 1].max() > 0.03  # the data's flaw is there to fix
    ball = _mujoco_depths(layup_three_ways["ball"], frames)
    assert ball[:, 1].max() < 1e-4 and np.allclose(ball[:, 0], before[:, 0])  # the ball out, the humanoid kept
    full = _mujoco_depths(layup_three_ways["all"], frames)
    assert full[:, 0].max() <= RF.FixConfig().rest_depth + 1e-4 and full[:, 1].max() < 1e-4


def test_fix_moves_positions_and_velocities_follow(layup_three_ways):
    off, ball, full = (layup_three_ways[k].table for k in ("off", "ball", "all"))
    assert torch.equal(ball.body_pos, off.body_pos) and torch.equal(ball.root_pos, off.root_pos)
    lift = full.root_pos[:, 2] - off.root_pos[:, 2]
    assert (lift >= 0).all() and float(lift.median()) > 0.02  # only up, by the feet's depth
    assert torch.allclose(full.body_pos - off.body_pos, lift[:, None, None] * torch.tensor([0.0, 0.0, 1.0]),
                          atol=1e-5)
    assert torch.allclose(full.root_pos[:, :2], off.root_pos[:, :2]) and torch.equal(full.dof_pos, off.dof_pos)
    for t in (ball, full):  # velocities are the moved positions' central differences
        assert torch.allclose(t.ball_vel[1:-1], (t.ball_pos[2:] - t.ball_pos[:-2]) * 30.0, atol=1e-3)
    assert torch.allclose(full.root_lin_vel[1:-1], (full.root_pos[2:] - full.root_pos[:-2]) * 30.0, atol=1e-3)


def test_off_reproduces_the_raw_tables(layup_three_ways):
    """'off' is the loader as it was: positions straight from the clip, and FK of them."""
    from skillmimic.motion import load_clip

    t = layup_three_ways["off"].table
    x = load_clip(layup_three_ways["off"].files[0])
    assert torch.equal(t.ball_pos, x[:, 324:327]) and torch.equal(t.root_pos, x[:, 0:3])
    qpos, _ = layup_three_ways["off"].state(torch.zeros(3, dtype=torch.long), torch.tensor([0, 50, 120]))
    assert torch.allclose(M.forward_kinematics(M.load_model("rigid"), qpos)[0].float(), t.body_pos[[0, 50, 120]],
                          atol=1e-5)
    with pytest.raises(ValueError, match="choose 'off', 'ball' or 'all'"):
        MotionSet(DATA / "layup", consistent=True)


def test_kick_tool_runs_on_a_tiny_input(capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    import reference_kick

    out = reference_kick.measure(reference_kick.Args(motion_dir=str(DATA / "layup"), every=40, batch=2))
    assert out["off"]["starts"] == 4 and len(out["all"]["ball_vel_err"]) == 4
    assert out["all"]["floor"].max() < out["off"]["floor"].max()
    assert "| starts with ball velocity off > 1 m/s |" in capsys.readouterr().out
