"""Scoring: dribble to a hoop 2-8 m away (at a random angle) and lay the ball up into it.

The hoop is a rim of radius 0.225 m at 2.5 m height (a regulation rim), not a collider: the ball passes through
it or by it. Reward per control step: 0.5 exp(-0.5 d_root) + 0.5 exp(-d_ball), with d_root the pelvis's floor
distance to the hoop and d_ball the ball's distance to the rim's centre (m); plus `success_bonus` on success.
Success: the ball's centre crosses the rim's plane downwards inside the rim (from above through the hoop), the
humanoid standing. The reward's numbers are ScoringConfig's defaults.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from skillmimic.skills import DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, LAYUP, PICKUP
from skillmimic.tasks.state import TaskState, floor_heading, goal_obs, random_points_around
from skillmimic.viz.court import Decoration, Hoop, hoop_facing

HOOP_HEIGHT = 2.5
RIM_RADIUS = 0.225


@dataclasses.dataclass
class ScoringConfig:
    min_distance: float = 2.0
    """Nearest hoop (m from the pelvis at the start, on the floor)."""
    max_distance: float = 8.0
    """Farthest hoop."""
    success_bonus: float = 10.0
    """Reward added on the step of success."""
    root_weight: float = 0.5
    """Share of the reward for the pelvis's approach: root_weight * exp(-root_scale * d_root)."""
    root_scale: float = 0.5
    """Scale of the pelvis's floor distance to the hoop (1/m)."""
    ball_weight: float = 0.5
    """Share of the reward for the ball's approach to the rim: ball_weight * exp(-ball_scale * d_ball)."""
    ball_scale: float = 1.0
    """Scale of the ball's distance to the rim's centre (1/m)."""


class Scoring:
    skills = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, LAYUP, PICKUP)
    init_labels = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT)
    obs_dim = 5

    def __init__(self, cfg: ScoringConfig, num_envs: int, device: torch.device, gen: torch.Generator):
        self.cfg, self.gen = cfg, gen
        self.hoop = torch.zeros(num_envs, 2, device=device)  # floor position of the rim's centre
        self.last_ball = torch.zeros(num_envs, 3, device=device)
        # Where the pelvis stood and faced at the episode's start (floor): the drawn board stands across the rim.
        self.start = torch.zeros(num_envs, 2, device=device)
        self.start_heading = torch.zeros(num_envs, 2, device=device)

    def reset(self, env_ids: torch.Tensor, state: TaskState) -> None:
        self.hoop[env_ids] = random_points_around(state.root_pos[env_ids, :2], self.cfg.min_distance,
                                                  self.cfg.max_distance, self.gen)
        self.last_ball[env_ids] = state.ball_pos[env_ids]
        self.start[env_ids] = state.root_pos[env_ids, :2]
        self.start_heading[env_ids] = floor_heading(state.root_quat[env_ids])

    def set_goal(self, point: np.ndarray | torch.Tensor) -> None:
        self.hoop[:] = torch.as_tensor(point, dtype=torch.float32, device=self.hoop.device)[:2]

    def observe(self, state: TaskState) -> torch.Tensor:
        """The hoop in the heading frame from the pelvis and from the ball, and the ball below the rim. (N, 5)"""
        return torch.cat((goal_obs(state, self.hoop), (HOOP_HEIGHT - state.ball_pos[:, 2:3])), dim=-1)

    def step(self, state: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        rim = torch.cat((self.hoop, torch.full_like(self.hoop[:, :1], HOOP_HEIGHT)), dim=-1)
        d_root = (state.root_pos[:, :2] - self.hoop).norm(dim=-1)
        d_ball = (state.ball_pos - rim).norm(dim=-1)
        c = self.cfg
        reward = c.root_weight * torch.exp(-c.root_scale * d_root) + c.ball_weight * torch.exp(-c.ball_scale * d_ball)
        success = through_rim(self.last_ball, state.ball_pos, rim) & state.standing
        self.last_ball = state.ball_pos.clone()
        return reward + self.cfg.success_bonus * success, success

    def decorations(self, i: int) -> list[Decoration]:
        """World i's hoop, its board across the rim from where the humanoid started (`court.hoop_facing`)."""
        centre = tuple(self.hoop[i].tolist())
        facing = hoop_facing(centre, self.start[i].tolist(), self.start_heading[i].tolist())
        return [Hoop(centre, facing, HOOP_HEIGHT, RIM_RADIUS)]


def through_rim(before: torch.Tensor, after: torch.Tensor, rim: torch.Tensor) -> torch.Tensor:
    """Whether the ball's centre went down through the rim's disc between two positions. (N, 3) x3 -> (N,)."""
    down = (before[:, 2] >= rim[:, 2]) & (after[:, 2] < rim[:, 2])
    t = ((before[:, 2] - rim[:, 2]) / (before[:, 2] - after[:, 2]).clamp(min=1e-9)).clamp(0, 1)
    crossing = before[:, :2] + t[:, None] * (after[:, :2] - before[:, :2])
    return down & ((crossing - rim[:, :2]).norm(dim=-1) < RIM_RADIUS)
