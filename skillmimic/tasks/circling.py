"""Circling: dribble around a centre on a circle of radius 2-5 m.

An episode starts on the circle: the centre is drawn at the radius from the pelvis, at a random angle.
Reward per control step: exp(-2 e) * (0.5 + 0.5 min(|v_t| / 1 m/s, 1)) * (1 if the ball is within 1.5 m of the
pelvis, else 0.2), with e = | |pelvis - centre| - radius | (m) and v_t the pelvis's speed along the circle; plus
`success_bonus` on success.
Success: half a lap (pi rad) around the centre, counted only over steps on the circle (e < 0.5 m) with the ball
within 1.5 m, the humanoid standing. The numbers are CirclingConfig's defaults.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from skillmimic.skills import DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, PICKUP
from skillmimic.tasks.state import TaskState, random_points_around, to_heading_frame
from skillmimic.viz.court import Decoration, Marker, Ring


@dataclasses.dataclass
class CirclingConfig:
    min_radius: float = 2.0
    """Smallest circle (m)."""
    max_radius: float = 5.0
    """Largest circle (m)."""
    tolerance: float = 0.5
    """On the circle: within this distance of it (m)."""
    success_angle: float = float(np.pi)
    """Angle to sweep around the centre, on the circle with the ball (rad)."""
    success_bonus: float = 10.0
    """Reward added on the step of success."""
    error_scale: float = 2.0
    """The reward is exp(-error_scale * e), e the pelvis's distance to the circle (1/m)."""
    full_speed: float = 1.0
    """Speed along the circle from which the speed factor is 1 (m/s); it is 0.5 at rest."""
    near_ball: float = 1.5
    """The ball within this floor distance of the pelvis is being dribbled (m)."""
    far_factor: float = 0.2
    """Factor on the reward while the ball is farther than near_ball (the floor of the ball factor)."""


class Circling:
    skills = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT, PICKUP)
    init_labels = (DRIBBLE_FORWARD, DRIBBLE_LEFT, DRIBBLE_RIGHT)
    obs_dim = 4

    def __init__(self, cfg: CirclingConfig, num_envs: int, device: torch.device, gen: torch.Generator):
        self.cfg, self.gen = cfg, gen
        self.centre = torch.zeros(num_envs, 2, device=device)
        self.radius = torch.full((num_envs,), cfg.min_radius, device=device)
        self.swept = torch.zeros(num_envs, device=device)  # signed angle swept on the circle (rad)
        self.last_angle = torch.zeros(num_envs, device=device)
        self.moved = torch.zeros(num_envs, dtype=torch.bool, device=device)  # centre moved since the last step

    def _angle(self, state: TaskState) -> torch.Tensor:
        d = state.root_pos[:, :2] - self.centre
        return torch.atan2(d[:, 1], d[:, 0])

    def reset(self, env_ids: torch.Tensor, state: TaskState) -> None:
        n = env_ids.shape[0]
        r = self.cfg.min_radius + (self.cfg.max_radius - self.cfg.min_radius) * torch.rand(
            n, device=self.radius.device, generator=self.gen)
        self.radius[env_ids] = r
        root = state.root_pos[env_ids, :2]
        unit = random_points_around(torch.zeros_like(root), 1.0, 1.0, self.gen)
        self.centre[env_ids] = root + r[:, None] * unit
        self.swept[env_ids] = 0.0
        self.last_angle[env_ids] = self._angle(state)[env_ids]

    def set_goal(self, point: np.ndarray | torch.Tensor) -> None:
        """Move every world's centre (the lap starts again from where the humanoid is)."""
        self.centre[:] = torch.as_tensor(point, dtype=torch.float32, device=self.centre.device)[:2]
        self.swept[:] = 0.0
        self.moved[:] = True

    def observe(self, state: TaskState) -> torch.Tensor:
        """The centre in the heading frame (x, y), the radius, and the signed distance to the circle. (N, 4)"""
        n = self.centre.shape[0]
        c3 = torch.cat((self.centre, torch.zeros(n, 1, device=self.centre.device)), dim=-1)
        local = to_heading_frame(state.root_pos, state.root_quat, c3)[:, :2]
        err = (state.root_pos[:, :2] - self.centre).norm(dim=-1) - self.radius
        return torch.cat((local, self.radius[:, None], err[:, None]), dim=-1)

    def step(self, state: TaskState) -> tuple[torch.Tensor, torch.Tensor]:
        rel = state.root_pos[:, :2] - self.centre
        dist = rel.norm(dim=-1).clamp(min=1e-6)
        err = (dist - self.radius).abs()
        tangent = torch.stack((-rel[:, 1], rel[:, 0]), dim=-1) / dist[:, None]
        v_t = (state.root_vel[:, :2] * tangent).sum(-1)
        near = (state.ball_pos - state.root_pos)[:, :2].norm(dim=-1) < self.cfg.near_ball
        speed = (v_t.abs() / self.cfg.full_speed).clamp(max=1.0)
        ball = torch.where(near, 1.0, self.cfg.far_factor)
        reward = torch.exp(-self.cfg.error_scale * err) * (0.5 + 0.5 * speed) * ball
        angle = self._angle(state)
        delta = torch.remainder(angle - self.last_angle + torch.pi, 2 * torch.pi) - torch.pi
        delta = torch.where(self.moved, torch.zeros_like(delta), delta)
        self.last_angle, self.moved = angle, torch.zeros_like(self.moved)
        counts = (err < self.cfg.tolerance) & near & state.standing
        self.swept += torch.where(counts, delta, torch.zeros_like(delta))
        success = (self.swept.abs() >= self.cfg.success_angle) & state.standing
        return reward + self.cfg.success_bonus * success, success

    def decorations(self, i: int) -> list[Decoration]:
        """World i's centre and its circle on the floor."""
        centre = tuple(self.centre[i].tolist())
        return [Marker(centre), Ring(centre, float(self.radius[i]))]
