"""Reference frames the simulator can hold: no body in the floor, the ball outside the hands.

The clips do not fit the model where it touches things. Over all 101 clips (rigid hand, MuJoCo's collision on
every frame) the model's lowest humanoid geom sits 2.8 cm in the floor at the median (90th percentile 4.3, max
6.6), because its feet reach lower below the ankles than the captured skeleton's; where the ball is within a
hand's reach it is up to 11.7 cm inside the hand's capsules (median 1.6 cm over the 5,081 frames where it
penetrates them); a ball on the floor sinks 0.9 cm into it at the median (max 2.5). A reference-state start
in such a frame begins with a push out of the floor and the ball popped from the hand.

`fix_positions` moves each frame's positions just enough to remove the penetration, in three steps, all
vectorised over the frames of one clip (no MuJoCo call; the tests check the result with MuJoCo's collision):
1. (`FixConfig.lift`) lift the humanoid by its floor penetration less `rest_depth`, smoothed over time (a
   moving maximum, then a moving average of the same width: never below the per-frame need, and without steps
   that would kick the root's velocity), as PHC's and ProtoMotions' motion libraries fix the height; never
   lower it;
2. lift the ball with the humanoid when it is up in the air or in a hand (the scene is lifted, so the hand keeps
   its hold), but only out of the floor when it is on the floor: the ball's sink (0.9 cm) is not the
   humanoid's lift (2.8 cm; the two are uncorrelated, r = 0.07 over the 4,193 frames with the ball on the
   floor), so lifting it with the humanoid there would leave it floating. Between the floor and `ball_band`
   above it the ball's lift blends linearly from its sink to the humanoid's;
3. push the ball out of the hand's capsules (wrist and finger geoms of both hands) along the contact normal,
   each hand's deepest contact first, a few rounds (several capsules touch at once), keeping it out of the
   floor; the push is smoothed over time (a moving average) and pushed once more. Between two hands closer than
   its diameter no place is free: it is left where both penetrate alike.
The lift moves every body about 3 cm from the recorded positions, so MotionSet's default ('ball') does only
steps 2-3 without the lift (see MotionSet and docs/reference_consistency.md for the measurements).
The hands' contacts are listed from 1.5 cm away but act only on real penetration (distance < 0,
skillmimic.model.Physics.hand_margin = 0); only that is removed here.
"""

from __future__ import annotations

import dataclasses

import mujoco
import torch
import torch.nn.functional as F

from skillmimic import model as M
from skillmimic import rotations

SPHERE, CAPSULE, BOX = (int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE),
                         int(mujoco.mjtGeom.mjGEOM_BOX))


@dataclasses.dataclass(frozen=True, eq=False)
class HumanoidGeoms:
    """The humanoid's collision geoms of one model, as constant tensors (G geoms, float64 on the CPU).

    body (G,) long: the geom's body, 0..52 in the dataset's order; pos (G, 3), quat (G, 4) wxyz: its frame in
    the body's; type (G,) long, mjtGeom (sphere, capsule or box); size (G, 3), MuJoCo's (radius, half-length;
    box half-sizes); hand (G,) bool: a wrist or finger geom of either hand. ball_radius: the ball's (m).
    """

    body: torch.Tensor
    pos: torch.Tensor
    quat: torch.Tensor
    type: torch.Tensor
    size: torch.Tensor
    hand: torch.Tensor
    ball_radius: float


def humanoid_geoms(m: mujoco.MjModel) -> HumanoidGeoms:
    """Read the humanoid's geoms (and the ball's radius) from a hand's model; the floor is the plane z = 0."""
    gb = M.geom_body_table(m)
    ids = torch.nonzero((gb >= 0) & (gb < M.NUM_BODIES)).flatten()
    types = torch.as_tensor(m.geom_type, dtype=torch.long)[ids]
    hand = torch.zeros(M.NUM_BODIES, dtype=torch.bool)
    hand[list(M.LEFT_HAND + M.RIGHT_HAND)] = True
    hand = hand[gb[ids]]
    if not bool(((types == SPHERE) | (types == CAPSULE) | (types == BOX)).all() and (types[hand] == CAPSULE).all()):
        raise ValueError("the humanoid's geoms must be spheres, capsules or boxes, the hands' capsules")
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    if floor < 0 or abs(float(m.geom_pos[floor][2])) > 0 or float(m.geom_quat[floor][0]) != 1.0:
        raise ValueError("expected the floor to be the plane z = 0")
    f64 = dict(dtype=torch.float64)
    ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
    return HumanoidGeoms(
        body=gb[ids], pos=torch.as_tensor(m.geom_pos, **f64)[ids], quat=torch.as_tensor(m.geom_quat, **f64)[ids],
        type=types, size=torch.as_tensor(m.geom_size, **f64)[ids], hand=hand,
        ball_radius=float(m.geom_size[ball][0]),
    )


def geom_frames(body_pos: torch.Tensor, body_quat: torch.Tensor, geoms: HumanoidGeoms
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """World frames of the geoms from their bodies' (MuJoCo's geom_xpos and geom_xmat).
    body_pos (T, 53, 3), body_quat (T, 53, 4) -> centre (T, G, 3), rotation (T, G, 3, 3) (columns: the geom's axes)."""
    q = body_quat[:, geoms.body]  # (T, G, 4)
    centre = body_pos[:, geoms.body] + rotations.quat_rotate(q, geoms.pos.expand(q.shape[:-1] + (3,)))
    return centre, rotations.quat_to_matrix(rotations.quat_mul(q, geoms.quat.expand_as(q)))


def floor_depth(centre: torch.Tensor, rot: torch.Tensor, geoms: HumanoidGeoms) -> torch.Tensor:
    """How deep the lowest humanoid geom reaches below the floor z = 0, or 0 when none does.
    centre (T, G, 3), rot (T, G, 3, 3) -> (T,) metres, >= 0."""
    up = rot[..., 2, :].abs()  # (T, G, 3): |z component| of each geom axis
    # How far each geom reaches below its centre: a box, its half-sizes along z; a sphere, its radius; a
    # capsule, its radius and the z extent of its half-length.
    box = (up * geoms.size).sum(-1)  # (T, G)
    round_ = geoms.size[:, 0] + torch.where(geoms.type == CAPSULE, up[..., 2] * geoms.size[:, 1], 0.0)
    reach = torch.where(geoms.type == BOX, box, round_)
    return (reach - centre[..., 2]).amax(-1).clamp(min=0.0)


def capsule_distance(point: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance from a point to the surface of capsules with axis ends a, b, and the unit normal from the
    capsule to the point. point (..., 3), a, b (..., K, 3), radius (K,) -> distance (..., K), normal (..., K, 3)."""
    ab = b - a
    p = point.unsqueeze(-2)
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)
    closest = a + t.clamp(0.0, 1.0).unsqueeze(-1) * ab
    off = p - closest
    length = off.norm(dim=-1)
    # A point on the axis itself has no direction out: push it up.
    normal = torch.where(length.unsqueeze(-1) > 1e-9, off / length.clamp(min=1e-9).unsqueeze(-1),
                         torch.tensor([0.0, 0.0, 1.0], dtype=off.dtype))
    return length - radius, normal


def push_ball_out(ball: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: torch.Tensor, left: torch.Tensor,
                  ball_radius: float, rounds: int = 8) -> torch.Tensor:
    """Move a ball out of two hands' capsules along the contact normals, never into the floor z = 0.

    Each round moves the ball by the mean over the hands that it penetrates of each one's deepest push: out of
    one hand in a few rounds, and between two hands that hold it closer than its diameter (a two-handed catch;
    no position is free there) to where both penetrate alike, instead of out of one and into the other.
    ball (T, 3), a, b (T, K, 3) capsule axis ends, radius (K,), left (K,) bool: the capsule is the left hand's
    -> ball (T, 3)."""
    ball = ball.clone()
    active = torch.arange(ball.shape[0])  # the frames still inside a hand: after the first round, a few
    for _ in range(rounds):
        dist, normal = capsule_distance(ball[active], a, b, radius + ball_radius)  # (A, K), (A, K, 3)
        push = (-dist).clamp(min=0.0)  # (A, K)
        inside = (push > 0).any(-1)
        if not bool(inside.any()):
            break
        active, push, normal = active[inside], push[inside], normal[inside]
        a, b = a[inside], b[inside]
        step, hands = torch.zeros(len(active), 3, dtype=ball.dtype), torch.zeros(len(active), 1, dtype=ball.dtype)
        for side in (left, ~left):
            depth, k = push.masked_fill(~side, 0.0).max(-1)  # (A,): this hand's deepest contact
            n = normal.gather(-2, k[:, None, None].expand(-1, 1, 3)).squeeze(-2)  # (A, 3)
            step = step + depth.unsqueeze(-1) * n
            hands = hands + (depth > 0).unsqueeze(-1)
        moved = ball[active] + step / hands.clamp(min=1.0)
        moved = torch.cat((moved[:, :2], moved[:, 2:].clamp(min=ball_radius)), -1)
        # A frame that no longer moves (a squeeze balanced, a ball held down on the floor) is done.
        going = (moved - ball[active]).norm(dim=-1) > 1e-5
        ball[active] = moved
        active, a, b = active[going], a[going], b[going]
        if len(active) == 0:
            break
    return ball


def moving_average(x: torch.Tensor, half_width: int) -> torch.Tensor:
    """Mean over +-half_width frames, the ends repeated. x (T, C) -> (T, C)."""
    if half_width <= 0:
        return x
    y = F.pad(x.T[None], (half_width, half_width), mode="replicate")  # (1, C, T + 2 half_width)
    return F.avg_pool1d(y, 2 * half_width + 1, stride=1)[0].T


def smooth_lift(depth: torch.Tensor, half_width: int) -> torch.Tensor:
    """A lift that is never below depth and has no steps: a moving maximum over +-half_width frames, then a
    moving average over the same window (each frame's average covers only maxima of windows that hold it).
    depth (T,) -> (T,)."""
    if half_width <= 0:
        return depth
    k = 2 * half_width + 1
    peak = F.max_pool1d(F.pad(depth[None, None], (half_width, half_width), mode="replicate"), k, stride=1)  # (1, 1, T)
    return moving_average(peak[0].T, half_width)[:, 0]


def ball_lift(ball_z: torch.Tensor, lift: torch.Tensor, ball_radius: float, band: float) -> torch.Tensor:
    """The ball's lift: out of the floor where it is on it, the humanoid's lift from `band` above the floor up,
    linear between. ball_z, lift (T,) -> (T,). Continuous in ball_z, and the ball's height stays increasing in it."""
    height = ball_z - ball_radius  # of the ball's bottom
    return torch.maximum(-height, lift * (height / band).clamp(0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class FixConfig:
    """Settings of fix_positions."""

    smooth_frames: int = 5
    """Half-width of the lift's moving maximum and average (frames, at 60 fps)."""
    ball_band: float = 0.3
    """Height of the ball's bottom (m) above which it is lifted with the humanoid."""
    rounds: int = 8
    """Rounds of pushing the ball out of the hands."""
    lift: bool = True
    """Lift the humanoid out of the floor (steps 1-2); off, only the ball is moved (out of the floor and the
    hands), which leaves the forward kinematics as they were."""
    rest_depth: float = 0.003
    """Depth (m) the lowest geom may keep in the floor: about where MuJoCo's soft contact holds a standing
    humanoid, so that its first step starts supported instead of dropping onto the floor."""


def fix_positions(body_pos: torch.Tensor, body_quat: torch.Tensor, ball_pos: torch.Tensor, geoms: HumanoidGeoms,
                  cfg: FixConfig = FixConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """The corrections of one clip's frames (see the module docstring).

    body_pos (T, 53, 3), body_quat (T, 53, 4): the model's forward kinematics of the frames; ball_pos (T, 3).
    Returns lift (T,), the humanoid's upward shift (add it to the root's and every body's z), and the ball's new
    position (T, 3).
    """
    centre, rot = geom_frames(body_pos, body_quat, geoms)
    lift = smooth_lift((floor_depth(centre, rot, geoms) - cfg.rest_depth).clamp(min=0.0), cfg.smooth_frames)  # (T,)
    if not cfg.lift:
        lift = torch.zeros_like(lift)
    r = geoms.ball_radius
    ball = ball_pos + torch.stack((torch.zeros_like(lift), torch.zeros_like(lift),
                                   ball_lift(ball_pos[:, 2], lift, r, cfg.ball_band)), -1)
    hand = geoms.hand  # all capsules (humanoid_geoms checks)
    axis = rot[:, hand, :, 2] * geoms.size[hand, 1, None]  # (T, H, 3): centre to one end
    c = centre[:, hand] + lift[:, None, None] * torch.tensor([0.0, 0.0, 1.0], dtype=centre.dtype)
    left = torch.tensor([int(b) in M.LEFT_HAND for b in geoms.body[hand]])  # (H,)
    out = push_ball_out(ball, c - axis, c + axis, geoms.size[hand, 0], left, r, cfg.rounds)
    # The push jumps where a hand takes or leaves the ball; its moving average does not, and a last push
    # removes what the average leaves in.
    out = ball + moving_average(out - ball, cfg.smooth_frames)
    return lift, push_ball_out(out, c - axis, c + axis, geoms.size[hand, 0], left, r, cfg.rounds)
