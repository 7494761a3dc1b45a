"""What the imitation and the task environments share: the simulator built next to the motions, the humanoid's
own observation, the fall rule and the restart of finished episodes."""

from __future__ import annotations

from typing import Callable

import torch

from skillmimic.device import resolve_device
from skillmimic.envs.observations import humanoid_ball_obs
from skillmimic.model import Physics
from skillmimic.motion import MotionSet
from skillmimic.sim import Backend, SimConfig, Simulator, make_sim


def build_sim(num_envs: int, backend: Backend, device: str | torch.device, self_collision: bool, hand: str,
              motions: MotionSet, physics: Physics = Physics()) -> Simulator:
    """The simulator of num_envs worlds, once the motions are found on its device and laid out for its hand
    (checked before the build: on a GPU that compiles kernels for a while)."""
    d = resolve_device(str(device))
    if motions.table.root_pos.device != d:
        raise ValueError(f"motions are on {motions.table.root_pos.device}, the environment on {d}")
    if motions.spec.hand != hand:
        raise ValueError(f"the motions are laid out for the {motions.spec.hand} hand, the environment simulates "
                         f"the {hand} hand")
    return make_sim(SimConfig(backend=backend, self_collision=self_collision, hand=hand, physics=physics), num_envs, d)


def own_obs(sim: Simulator, fn: Callable[..., torch.Tensor] = humanoid_ball_obs) -> torch.Tensor:
    """The humanoid and the ball as the skill policy sees them (envs/observations.py), by `fn` (humanoid_ball_obs,
    or a compiled form of it). -> (N, OBS_DIM)"""
    return fn(sim.body_pos_w, sim.body_quat_w, sim.body_lin_vel_w, sim.body_ang_vel_w, sim.ball_pos_w,
              sim.ball_lin_vel_w, sim.ball_ang_vel_w, sim.hand_ball_contact)


def body_on_floor(sim: Simulator, floor_allowed: torch.Tensor) -> torch.Tensor:
    """The fall rule: a body not allowed on the floor (floor_allowed (53,) bool) touches it. -> (N,) bool"""
    return (sim.body_floor_contact & ~floor_allowed).any(-1)


def restart_ended(reset_envs: Callable[[torch.Tensor], None], terminated: torch.Tensor,
                  truncated: torch.Tensor) -> None:
    """Auto-reset: restart the worlds whose episodes just ended (terminated or truncated, (N,) bool)."""
    ids = (terminated | truncated).nonzero().flatten()
    if ids.numel():
        reset_envs(ids)
