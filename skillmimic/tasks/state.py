"""What a task sees of a world after a control step, and the goal observation shared by the tasks.

Tasks are plain classes with the same few members (no base class):
    skills      labels the high-level policy chooses among (its action i runs skill skills[i])
    init_labels labels of the clips whose frames start an episode
    obs_dim     size of the goal observation
    reset(env_ids, state)           draw new goals for these worlds (around where the humanoid stands)
    set_goal(point)                 put every world's goal at a floor point (play.py's mouse target)
    observe(state) -> (N, obs_dim)  the goal in the humanoid's heading frame
    step(state) -> reward (N,), success (N,) bool   after each control step (60 Hz)
    decorations(i) -> list          what pictures draw for world i's goal, in its frame (skillmimic.viz.court: a
                                    hoop, markers, a circle, an arrow); drawn only, the physics does not know them
"""

from __future__ import annotations

import dataclasses

import torch

from skillmimic import rotations


@dataclasses.dataclass
class TaskState:
    """One control step's outcome, world frame, batch first."""

    root_pos: torch.Tensor  # (N, 3) pelvis
    root_quat: torch.Tensor  # (N, 4) wxyz
    root_vel: torch.Tensor  # (N, 3)
    ball_pos: torch.Tensor  # (N, 3)
    ball_vel: torch.Tensor  # (N, 3)
    hand_ball: torch.Tensor  # (N,) bool: a hand touches the ball
    standing: torch.Tensor  # (N,) bool: not fallen


def to_heading_frame(root_pos: torch.Tensor, root_quat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (N, 3) in the humanoid's heading frame (origin at the pelvis, x its facing on the floor)."""
    return rotations.quat_rotate(rotations.heading_inverse(root_quat), points - root_pos)


def floor_heading(root_quat: torch.Tensor) -> torch.Tensor:
    """The unit floor direction the humanoid faces (the heading frame's x axis in the world). (N, 4) -> (N, 2)"""
    forward = torch.tensor(rotations.FORWARD, device=root_quat.device, dtype=root_quat.dtype)
    fwd = rotations.quat_rotate(root_quat, forward.expand(root_quat.shape[0], 3))[:, :2]
    return fwd / fwd.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def goal_obs(state: TaskState, goal: torch.Tensor) -> torch.Tensor:
    """A floor goal (N, 2) in the heading frame: its x, y and, from the ball, its x, y. -> (N, 4)."""
    n = goal.shape[0]
    g3 = torch.cat((goal, torch.zeros(n, 1, device=goal.device)), dim=-1)
    ball_floor = torch.cat((state.ball_pos[:, :2], torch.zeros(n, 1, device=goal.device)), dim=-1)
    offsets = torch.stack((g3 - state.root_pos, g3 - ball_floor), dim=1)  # (N, 2, 3)
    inv = rotations.heading_inverse(state.root_quat)[:, None].expand(n, 2, 4)
    return rotations.quat_rotate(inv, offsets)[..., :2].reshape(n, 4)


def random_points_around(centre: torch.Tensor, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """Floor points low..high m from centre (N, 2) at uniform random angles. -> (N, 2)."""
    n = centre.shape[0]
    r = low + (high - low) * torch.rand(n, device=centre.device, generator=gen)
    a = 2 * torch.pi * torch.rand(n, device=centre.device, generator=gen)
    return centre + torch.stack((r * torch.cos(a), r * torch.sin(a)), dim=-1)
