"""Throwing: throw the ball high, to a target height of 2.9 m.

The height is where the skills' throws peak: the shot's ball at 2.88 m in its clip and 2.97 m simulated, the
layup's at 2.82 and 2.92 m. At SkillMimic's 2.5 m (the height its code's throwing reward aims at) a test within
0.3 m of the target passes no shot or layup played as in the data (results/task_diagnosis/README.md: the shot from
its own first frame 0% at 2.5 m, 100% at 2.9 m), so no controller could learn the task; this project's default was
2.5 m until 2026-11-29.

Reward per control step: exp(-2 |z - H|) with z the ball's height and H the target height, a tenth of it while
a hand holds the ball (so that holding it up does not pay like throwing it); plus `success_bonus` on success.
Success: the ball, out of the hands, peaks (its vertical velocity turns from up to down) within 0.3 m of H, the
humanoid standing. The goal is a height, not a floor point: pictures draw a hoop with its rim at that height, above
the humanoid's start (the viewer's mouse target moves only the drawing). The numbers are ThrowingConfig's defaults.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from skillmimic.skills import DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, LAYUP, PICKUP, SHOT
from skillmimic.tasks.scoring import RIM_RADIUS
from skillmimic.tasks.state import TaskState, floor_heading
from skillmimic.viz.court import Decoration, Hoop, hoop_facing


@dataclasses.dataclass
class ThrowingConfig:
    height: float = 2.9
    """Target height of the ball (m): where the shot's and the layup's throws peak (the module's docstring)."""
    tolerance: float = 0.3
    """A free ball's peak within this of the target height is a success (m)."""
    success_bonus: float = 10.0
    """Reward added on the step of success."""
    height_scale: float = 2.0
    """The reward is exp(-height_scale * |z - height|), z the ball's height (1/m)."""
    held_factor: float = 0.1
    """Factor on the reward while a hand holds the ball (holding it up must not pay like throwing it)."""


class Throwing:
    skills = (PICKUP, SHOT, LAYUP, DRIBBLE_FORWARD)
    init_labels = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, PICKUP)
    obs_dim = 3

    def __init__(self, cfg: ThrowingConfig, num_envs: int, device: torch.device, gen: torch.Generator):
        self.cfg, self.gen = cfg, gen
        self.last_vz = torch.zeros(num_envs, device=device)
        self.spot = torch.zeros(num_envs, 2, device=device)  # floor point under the drawn rim
        # Where the pelvis stood and faced at the episode's start (floor): the drawn board stands across the rim.
        self.start = torch.zeros(num_envs, 2, device=device)
        self.start_heading = torch.zeros(num_envs, 2, device=device)

    def reset(self, env_ids: torch.Tensor, state: TaskState) -> None:
        self.last_vz[env_ids] = state.ball_vel[env_ids, 2]
        self.spot[env_ids] = state.root_pos[env_ids, :2]
        self.start[env_ids] = state.root_pos[env_ids, :2]
        self.start_heading[env_ids] = floor_heading(state.root_quat[env_ids])

    def set_goal(self, point: np.ndarray | torch.Tensor) -> None:
        self.spot[:] = torch.as_tensor(point, dtype=torch.float32, device=self.spot.device)[:2]

    def observe(self, state: TaskState) -> torch.Tensor:
        """The ball's height below the target, its vertical velocity, and whether a hand holds it. (N, 3)"""
        return torch.stack((self.cfg.height - state.ball_pos[:, 2], state.ball_vel[:, 2], state.hand_ball.float()),
                           dim=-1)

    def step(self, state: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        z, vz = state.ball_pos[:, 2], state.ball_vel[:, 2]
        reward = torch.exp(-self.cfg.height_scale * (z - self.cfg.height).abs()) * torch.where(
            state.hand_ball, self.cfg.held_factor, 1.0)
        peak = (self.last_vz > 0) & (vz <= 0) & ~state.hand_ball
        self.last_vz = vz.clone()
        success = peak & ((z - self.cfg.height).abs() < self.cfg.tolerance) & state.standing
        return reward + self.cfg.success_bonus * success, success

    def decorations(self, i: int) -> list[Decoration]:
        """A hoop whose rim is at the target height above world i's spot; with the spot under the humanoid's start
        the board stands in front of it (`court.hoop_facing`)."""
        centre = tuple(self.spot[i].tolist())
        facing = hoop_facing(centre, self.start[i].tolist(), self.start_heading[i].tolist())
        return [Hoop(centre, facing, self.cfg.height, RIM_RADIUS)]
