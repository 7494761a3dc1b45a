"""The task-agnostic HOI imitation reward: pure torch functions, type-annotated so that `torch.jit.script` and
`torch.compile` take them (tests/test_rewards.py scripts them).

Every term has the form r = exp(-w * e), with e an error >= 0 and w its weight from `RewardConfig`, so a perfect
match gives 1, a term with weight 0 is 1 always, and the reward is the product of the terms, as in SkillMimic:
one term that goes to zero takes the whole reward with it, so no part of the interaction can be traded away.

    e_p   body position     mean over the 53 bodies of |p - p_ref|^2                      (m^2)
    e_r   body rotation     mean over the 53 bodies of angle(q, q_ref)^2, the geodesic     (rad^2)
                            distance (not a difference of exponential maps)
    e_jv  joint velocity    mean over the 156 hinges of (qd - qd_ref)^2                     ((rad/s)^2)
    e_op  ball position     |o - o_ref|^2                                                  (m^2)
    e_ov  ball velocity     |v_o - v_o_ref|^2                                              ((m/s)^2)
    e_ig  interaction graph mean over the 53 bodies of |(p - o) - (p_ref - o_ref)|^2: the
                            bodies seen from the ball                                      (m^2)
    e_cg  contact graph     w_cg1 * |hand-ball contact - label| + w_cg2 * (a body that
                            is not a hand touches the ball, or a body that should not
                            touch the floor does)                                          (0 or 1 each)

Contacts come from the simulator's exact contact pairs (skillmimic.sim). Published weights (SkillMimic):
p 20, r 20, op 1, ig 20, cg1 5, cg2 5; the velocity terms are off (weight 0) there and here by default.

SkillMimic writes its body errors as means over components, with rotations as the joints' own values
(`RewardConfig.form = "components"`):
    e_p   mean over the 53 bodies and x, y, z of (p - p_ref)^2           = the e_p above / 3
    e_ig  mean over the 53 bodies and x, y, z of the graph's differences  = the e_ig above / 3
    e_r   mean over the root and the joints the model moves (the hand's fixed finger joints are left out) of
          angle(local rotation, reference's)^2 / 3: a joint's rotation relative to its parent body, whose exp-map
          difference spreads the angle over three components (the small-angle equivalent of SkillMimic's mean
          over its 3 + 156 exp-map values)
On the same states these are several times smaller than the summed world-frame form (0.1 rad of hinge noise:
e_r 0.21 there against about 0.01 here), so SkillMimic's weights 20 do not make the body term a cliff.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch

from skillmimic import rotations


@dataclasses.dataclass
class RewardConfig:
    form: Literal["bodies", "components"] = "bodies"
    """How the body errors are written: 'bodies' (squared distances summed over x, y, z and angles of the bodies'
    world orientations, averaged over the 53 bodies) or 'components' (SkillMimic's: means over components and
    the joints' local rotations; see the module docstring). 'bodies' stays the default: on the layup at 30 million
    samples 'components' reached 5.1% accuracy against 10.0% (docs/llc_recipe.md, round 4)."""
    p: float = 20.0
    """Weight of the body-position error (1/m^2)."""
    r: float = 20.0
    """Weight of the body-rotation error (1/rad^2)."""
    jv: float = 0.0
    """Weight of the joint-velocity error. Off by default: hinge rates of the data spike near gimbal lock."""
    op: float = 1.0
    """Weight of the ball-position error (1/m^2)."""
    ov: float = 0.0
    """Weight of the ball-velocity error."""
    ig: float = 20.0
    """Weight of the interaction-graph error (1/m^2)."""
    cg1: float = 5.0
    """Weight of a wrong hand-ball contact (the demonstration's label says whether a hand touches the ball)."""
    cg2: float = 5.0
    """Weight of a forbidden contact: a non-hand body on the ball, or a body not allowed on the floor (the
    imitation environment allows the feet and the hands, the only bodies that reach the floor in the data)."""


def exp_reward(error: torch.Tensor, weight: float) -> torch.Tensor:
    """exp(-weight * error): 1 at a perfect match, falling as the error grows. (...) -> (...)."""
    return torch.exp(-weight * error)


def body_position_error(body_pos: torch.Tensor, ref_body_pos: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of bodies. (N, B, 3) x2 -> (N,)."""
    return (body_pos - ref_body_pos).square().sum(-1).mean(-1)


def body_rotation_error(body_quat: torch.Tensor, ref_body_quat: torch.Tensor) -> torch.Tensor:
    """Mean squared geodesic angle between body orientations. (N, B, 4) x2 -> (N,)."""
    return rotations.quat_angle(body_quat, ref_body_quat).square().mean(-1)


def local_rotation_error(body_quat: torch.Tensor, ref_body_quat: torch.Tensor, parents: torch.Tensor,
                         rot_bodies: torch.Tensor) -> torch.Tensor:
    """Mean over rot_bodies of the squared angle between each body's rotation relative to its parent and the
    reference's, over 3 (per exp-map component). body_quat (N, B, 4) x2, parents (B,) long (the root's is
    itself: its world rotation counts), rot_bodies (B,) bool -> (N,)."""
    root = (torch.arange(parents.shape[0], device=parents.device) == parents)[None, :, None]
    local = torch.where(root, body_quat, rotations.quat_mul(rotations.quat_conj(body_quat[:, parents]), body_quat))
    ref_local = torch.where(root, ref_body_quat,
                            rotations.quat_mul(rotations.quat_conj(ref_body_quat[:, parents]), ref_body_quat))
    angle2 = rotations.quat_angle(local, ref_local).square() / 3.0  # (N, B)
    w = rot_bodies.to(angle2.dtype)
    return (angle2 * w).sum(-1) / w.sum()


def joint_velocity_error(dof_vel: torch.Tensor, ref_dof_vel: torch.Tensor) -> torch.Tensor:
    """Mean squared hinge-velocity difference. (N, D) x2 -> (N,)."""
    return (dof_vel - ref_dof_vel).square().mean(-1)


def point_error(x: torch.Tensor, ref_x: torch.Tensor) -> torch.Tensor:
    """Squared distance of one point (ball position or velocity). (N, 3) x2 -> (N,)."""
    return (x - ref_x).square().sum(-1)


def interaction_graph_error(
    body_pos: torch.Tensor, ball_pos: torch.Tensor, ref_body_pos: torch.Tensor, ref_ball_pos: torch.Tensor
) -> torch.Tensor:
    """Mean squared difference of the ball-to-body vectors. body (N, B, 3), ball (N, 3), x2 -> (N,)."""
    rel = body_pos - ball_pos.unsqueeze(1)
    ref_rel = ref_body_pos - ref_ball_pos.unsqueeze(1)
    return (rel - ref_rel).square().sum(-1).mean(-1)


def contact_graph_error(
    hand_ball: torch.Tensor,
    ref_contact: torch.Tensor,
    body_ball: torch.Tensor,
    body_floor: torch.Tensor,
    hand_mask: torch.Tensor,
    floor_allowed: torch.Tensor,
    w_cg1: float,
    w_cg2: float,
) -> torch.Tensor:
    """Weighted contact-graph error. hand_ball (N, 2) bool, ref_contact (N,) 0/1, body_ball and body_floor
    (N, B) bool, hand_mask and floor_allowed (B,) bool -> (N,).

    Edge 1: a hand touches the ball, as the label says. Edge 2: nothing else touches the ball, and only the
    bodies allowed on the floor (floor_allowed) touch it.
    """
    hand = hand_ball.any(-1).float()
    wrong_hand = (hand - ref_contact).abs()
    forbidden = (body_ball & ~hand_mask).any(-1) | (body_floor & ~floor_allowed).any(-1)
    return w_cg1 * wrong_hand + w_cg2 * forbidden.float()


def hoi_reward(
    body_pos: torch.Tensor,
    body_quat: torch.Tensor,
    dof_vel: torch.Tensor,
    ball_pos: torch.Tensor,
    ball_vel: torch.Tensor,
    hand_ball: torch.Tensor,
    body_ball: torch.Tensor,
    body_floor: torch.Tensor,
    ref_body_pos: torch.Tensor,
    ref_body_quat: torch.Tensor,
    ref_dof_vel: torch.Tensor,
    ref_ball_pos: torch.Tensor,
    ref_ball_vel: torch.Tensor,
    ref_contact: torch.Tensor,
    hand_mask: torch.Tensor,
    floor_allowed: torch.Tensor,
    w: dict[str, float],
    parents: Optional[torch.Tensor] = None,
    rot_bodies: Optional[torch.Tensor] = None,
    components: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The product of all terms, and each term for logging. Shapes as in the functions above, N environments.

    w: the weights by RewardConfig's field names, {"p": ..., "r": ..., "cg2": ...} (`weights(cfg)` makes it).
    parents (B,) long, rot_bodies (B,) bool: the body tree and the bodies whose local rotations count, for
    `components` (SkillMimic's form of the body errors; the module docstring).
    Returns reward (N,) and {"p": (N,), "r": ..., "cg": ...}.
    """
    e_p = body_position_error(body_pos, ref_body_pos)
    e_ig = interaction_graph_error(body_pos, ball_pos, ref_body_pos, ref_ball_pos)
    if components:
        assert parents is not None and rot_bodies is not None, "components needs parents and rot_bodies"
        e_p, e_ig = e_p / 3.0, e_ig / 3.0
        e_r = local_rotation_error(body_quat, ref_body_quat, parents, rot_bodies)
    else:
        e_r = body_rotation_error(body_quat, ref_body_quat)
    terms: dict[str, torch.Tensor] = {
        "p": exp_reward(e_p, w["p"]),
        "r": exp_reward(e_r, w["r"]),
        "jv": exp_reward(joint_velocity_error(dof_vel, ref_dof_vel), w["jv"]),
        "op": exp_reward(point_error(ball_pos, ref_ball_pos), w["op"]),
        "ov": exp_reward(point_error(ball_vel, ref_ball_vel), w["ov"]),
        "ig": exp_reward(e_ig, w["ig"]),
        "cg": torch.exp(
            -contact_graph_error(
                hand_ball, ref_contact, body_ball, body_floor, hand_mask, floor_allowed, w["cg1"], w["cg2"]
            )
        ),
    }
    reward = torch.ones_like(terms["p"])
    for t in terms.values():
        reward = reward * t
    return reward, terms


def weights(cfg: RewardConfig) -> dict[str, float]:
    """RewardConfig -> the weights by name, as hoi_reward takes them (a plain dict, so that it scripts)."""
    return {f.name: float(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name != "form"}
