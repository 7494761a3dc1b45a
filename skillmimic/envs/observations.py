"""What the humanoid observes of itself and the ball, in its heading frame. Pure torch functions.

The heading frame sits at the pelvis, turned about the world's vertical axis by the pelvis's heading, so the
observation does not change when the whole scene is moved across the floor or turned about the vertical.
No reference frame enters the observation: the policy acts on its own state, the ball and the skill condition
alone, so it can run from a skill label when a person or a high-level controller picks the skill.

Layout of `humanoid_ball_obs` (N, 804):
    root height                                        1
    body positions relative to the pelvis (52 bodies)  156
    body orientations, tangent-normal (53 x 6)         318   (first and third columns of each rotation matrix)
    body linear velocities (53 x 3)                    159
    body angular velocities (53 x 3)                   159
    ball position relative to the pelvis               3
    ball linear and angular velocity                   6
    hand-ball contact, left and right                  2
A skill policy observes these and the skill condition, a one-hot of skills.NUM_SLOTS (64): SKILL_OBS_DIM, 868.
With a history of K steps (envs/history.py; off by default) the 804 numbers of each of its last K control steps
come between the two, oldest first, and the skill condition stays last: skill_obs_dim(K).
"""

from __future__ import annotations

import torch

from skillmimic import rotations, skills

OBS_DIM = 1 + 156 + 318 + 159 + 159 + 3 + 6 + 2
SKILL_OBS_DIM = OBS_DIM + skills.NUM_SLOTS  # a skill policy's observation size


def skill_obs_dim(history_steps: int = 0) -> int:
    """A skill policy's observation size with the own observations of its last `history_steps` control steps."""
    return SKILL_OBS_DIM + history_steps * OBS_DIM


def tan_norm(quat: torch.Tensor) -> torch.Tensor:
    """Continuous 6-number encoding of orientations: two columns of the rotation matrix. (..., 4) -> (..., 6)."""
    m = rotations.quat_to_matrix(quat)
    return torch.cat((m[..., :, 0], m[..., :, 2]), dim=-1)


def humanoid_ball_obs(
    body_pos: torch.Tensor,
    body_quat: torch.Tensor,
    body_lin_vel: torch.Tensor,
    body_ang_vel: torch.Tensor,
    ball_pos: torch.Tensor,
    ball_lin_vel: torch.Tensor,
    ball_ang_vel: torch.Tensor,
    hand_ball: torch.Tensor,
) -> torch.Tensor:
    """body_* (N, 53, ...) world frame, Pelvis first; ball_* (N, 3); hand_ball (N, 2) bool -> (N, 804)."""
    N, B = body_pos.shape[0], body_pos.shape[1]
    root_pos, root_quat = body_pos[:, 0], body_quat[:, 0]
    inv = rotations.heading_inverse(root_quat)  # (N, 4)
    inv_b = inv.unsqueeze(1).expand(N, B, 4)
    local_pos = rotations.quat_rotate(inv_b[:, 1:], body_pos[:, 1:] - root_pos.unsqueeze(1))  # (N, 52, 3)
    local_rot = tan_norm(rotations.quat_mul(inv_b, body_quat))  # (N, 53, 6)
    lin = rotations.quat_rotate(inv_b, body_lin_vel)  # (N, 53, 3)
    ang = rotations.quat_rotate(inv_b, body_ang_vel)
    ball = rotations.quat_rotate(inv, ball_pos - root_pos)
    ball_v = rotations.quat_rotate(inv, ball_lin_vel)
    ball_w = rotations.quat_rotate(inv, ball_ang_vel)
    return torch.cat(
        (
            root_pos[:, 2:3],
            local_pos.reshape(N, -1),
            local_rot.reshape(N, -1),
            lin.reshape(N, -1),
            ang.reshape(N, -1),
            ball,
            ball_v,
            ball_w,
            hand_ball.float(),
        ),
        dim=-1,
    )
