"""Heading: dribble the ball to a floor goal 2-8 m away.

Reward per control step: exp(-0.5 d) with d the ball's floor distance to the goal (m), times 0.5 when the ball
is more than 1.5 m from the pelvis (dribbling, not kicking it there); plus `success_bonus` on success. The
numbers are HeadingConfig's defaults.
Success: the ball within 0.5 m of the goal (on the floor plane), the humanoid standing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from skillmimic.skills import DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, PICKUP
from skillmimic.tasks.state import TaskState, goal_obs, random_points_around
from skillmimic.viz.court import Arrow, Decoration, Marker


@dataclasses.dataclass
class HeadingConfig:
    min_distance: float = 2.0
    """Nearest goal (m from the pelvis at the start)."""
    max_distance: float = 8.0
    """Farthest goal."""
    success_radius: float = 0.5
    """The ball within this floor distance of the goal is a success."""
    success_bonus: float = 10.0
    """Reward added on the step of success."""
    distance_scale: float = 0.5
    """The reward is exp(-distance_scale * d), d the ball's floor distance to the goal (1/m)."""
    near_ball: float = 1.5
    """The ball within this floor distance of the pelvis is being dribbled (m)."""
    far_factor: float = 0.5
    """Factor on the reward while the ball is farther than near_ball (kicked, not dribbled)."""


class Heading:
    skills = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, PICKUP)
    init_labels = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT)
    obs_dim = 4

    def __init__(self, cfg: HeadingConfig, num_envs: int, device: torch.device, gen: torch.Generator):
        self.cfg, self.gen = cfg, gen
        self.goal = torch.zeros(num_envs, 2, device=device)  # (N, 2) floor point
        self.pelvis = torch.zeros(num_envs, 2, device=device)  # (N, 2) last seen floor point, for the drawn arrow

    def reset(self, env_ids: torch.Tensor, state: TaskState) -> None:
        self.goal[env_ids] = random_points_around(state.root_pos[env_ids, :2], self.cfg.min_distance,
                                                  self.cfg.max_distance, self.gen)
        self.pelvis[env_ids] = state.root_pos[env_ids, :2]

    def set_goal(self, point: np.ndarray | torch.Tensor) -> None:
        self.goal[:] = torch.as_tensor(point, dtype=torch.float32, device=self.goal.device)[:2]

    def observe(self, state: TaskState) -> torch.Tensor:
        return goal_obs(state, self.goal)

    def step(self, state: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        self.pelvis.copy_(state.root_pos[:, :2])
        d = (state.ball_pos[:, :2] - self.goal).norm(dim=-1)
        near = (state.ball_pos - state.root_pos)[:, :2].norm(dim=-1) < self.cfg.near_ball
        reward = torch.exp(-self.cfg.distance_scale * d) * torch.where(near, 1.0, self.cfg.far_factor)
        success = (d < self.cfg.success_radius) & state.standing
        return reward + self.cfg.success_bonus * success, success

    def decorations(self, i: int) -> list[Decoration]:
        """World i's goal, and an arrow on the floor from the humanoid towards it (from 0.4 m ahead of the pelvis,
        at most 1 m long, none within 1 m of the goal)."""
        goal, pelvis = self.goal[i].cpu().numpy(), self.pelvis[i].cpu().numpy()
        items: list[Decoration] = [Marker(tuple(goal.tolist()))]
        d = float(np.linalg.norm(goal - pelvis))
        if d > 1.0:
            u = (goal - pelvis) / d
            a, b = pelvis + 0.4 * u, pelvis + min(1.4, d - 0.3) * u
            items.append(Arrow(tuple(a.tolist()), tuple(b.tolist())))
        return items
