"""Ball curricula: a guiding force that pulls the ball towards its reference while the policy cannot yet keep
it, and fades as the policy learns to (AssistConfig, BallAssist); and a heavier ball that becomes the real one
over the run (MassCurriculum, at the end of this module's configs), which a run continued from a policy file can
take up where the file's run left it (MassCurriculum.first_step, the file's "mass_curriculum" entry).

Why: with the ball in the reward's product and the ball termination, an episode that loses the ball in the
layup's dribble (frames 18-38) stops there, so the clip's bounce, catch and finish are practised only from
reference starts, and in fifteen equal-sample arms no policy kept the ball through the dribble
(docs/llc_recipe.md). With the force, the whole clip is played from any start while the policy learns the
body and the hand's part; the force then falls to zero as the policy learns to keep the ball alone, so that what
is learned is the policy's. The evaluation never assists (its EnvConfig keeps mode "off"). Measured on the layup
(docs/llc_recipe.md, round 4): with the adaptive mode the training episodes keep the ball (5-9 cm off against
16-18 cm without), but after 170 million samples the factor was still 0.79 and the policy, evaluated without the
force, drops the ball: the policy leans on the force, so it is off by default.

The force on the ball, per environment, with the reference's ball position and velocity at the frame the control
step leads to:

    a = kp * (o_ref - o) + kd * (v_ref - v),   |a| clamped to max_accel,   F = ball mass * factor * a

Modes:
    off        no force
    schedule   factor falls linearly from 1 to 0 over `schedule_steps` control steps of the environment
    adaptive   a share (`probe_share`) of the episodes is never assisted. Their hazard, the rate at which they
               end early (ball lost, fall) per control step on the clip's frames (a decayed average), is the
               policy's own; the factor is 1 while it is above `hazard_high`, 0 once it is below `hazard_low`, and
               falls linearly in log(hazard) in between. (The probes' ball error would read low while the
               policy still loses the ball: an episode that loses it ends, and only those that keep it are
               averaged.)
In both modes the probe episodes play unassisted, so the policy always practises without the force too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from skillmimic.errors import UserError


@dataclasses.dataclass
class AssistConfig:
    mode: Literal["off", "schedule", "adaptive"] = "off"
    """'off', 'schedule' (factor 1 -> 0 over schedule_steps) or 'adaptive' (factor from the probes' hazard)."""
    kp: float = 400.0
    """Stiffness of the pull towards the reference's ball position (1/s^2, per unit of mass)."""
    kd: float = 40.0
    """Damping towards the reference's ball velocity (1/s; 2 * sqrt(kp) is critical)."""
    max_accel: float = 30.0
    """Largest acceleration the force gives the ball (m/s^2): a lost ball is brought back, not thrown."""
    probe_share: float = 0.25
    """Share of the episodes (drawn at each start) that are never assisted."""
    hazard_high: float = 1.0 / 30.0
    """adaptive: the probes' early-end rate per control step at and above which the factor is 1 (an unassisted
    episode lasts half a second or less on average)."""
    hazard_low: float = 1.0 / 300.0
    """adaptive: the rate at and below which the factor is 0 (5 s on average: longer than the layup's clip)."""
    hazard_decay: float = 0.995
    """adaptive: per control step decay of the probes' counts (a memory of about 200 steps)."""
    schedule_steps: int = 20_000
    """schedule: control steps of the environment over which the factor falls from 1 to 0."""


@dataclasses.dataclass
class MassCurriculum:
    """The other ball curriculum: the ball starts heavier and becomes the physics' ball (EnvConfig.physics, the
    mass the policy file records and the evaluation uses) over a number of control steps, in `levels` steps of
    equal ratio, each applied to every world at once (Simulator.set_ball_mass). Why: in round 5
    (docs/llc_recipe.md) a policy trained on SkillMimic's 7.2 kg ball succeeded on the layup where, from the same
    start, FIBA's 0.6 kg ball scored 0%; kinematic replay keeps a heavy ball in the hand longer
    (tools/ball_replay.py)."""

    start: float = 0.0
    """The ball's mass (kg) when the run starts; 0: no curriculum (the physics' mass throughout)."""
    steps: int = 20_000
    """Control steps of the environment over which the mass goes from `start` to the physics' mass."""
    levels: int = 8
    """The masses on the way (the last one is the physics' mass)."""
    first_step: int = 0
    """The curriculum's control step at this run's start: a run continued (--init-from) from one that stopped at
    step N passes N and goes on where that one stood, instead of from the `start` mass again (the policy file
    records N: "mass_curriculum", record; tools/layup_continue.sh passes it with CONTINUE). No effect without a
    curriculum."""

    def mass(self, end: float, step: int) -> float:
        """The ball's mass (kg) after `step` control steps of this run (the curriculum's step first_step + step),
        whose physics' mass is `end`."""
        if self.start <= 0:
            return end
        level = min(int(self.levels * (self.first_step + step) / max(self.steps, 1)), self.levels)
        return self.start * (end / self.start) ** (level / self.levels)

    def record(self, step: int) -> dict | None:
        """A policy file's "mass_curriculum" entry after `step` control steps of this run: the curriculum and the
        step it stood at (first_step + step), where a run continued from the file starts it (first_step); None
        without a curriculum."""
        if self.start <= 0:
            return None
        return {"start": self.start, "steps": self.steps, "levels": self.levels, "step": self.first_step + step}

    def note(self, entry: dict | None, end: float, name: str) -> str | None:
        """The line a run with this curriculum shows when it continues a policy file (`name`) whose
        "mass_curriculum" `entry` (recorded_step checks it) stood at a step > 0 of a curriculum towards `end` kg
        and first_step is 0: the run starts again from the heavy ball unless told where to start. None
        otherwise."""
        if self.start <= 0 or self.first_step != 0:
            return None
        step = recorded_step(entry, name)
        if step == 0:
            return None
        was = MassCurriculum(entry["start"], entry["steps"], entry["levels"]).mass(end, step)
        return (f"note: {name}: its run stood at step {step:,} of its mass curriculum (ball {was:.3g} kg); this run "
                f"starts the curriculum again from {self.start:g} kg unless --env.mass-curriculum.first-step {step} "
                "is passed")


def recorded_step(entry: dict | None, name: str) -> int:
    """The curriculum step a policy file's "mass_curriculum" entry (MassCurriculum.record) stood at; 0 for a file
    without one (no curriculum, or written before the entry was). A malformed entry is refused in one line naming
    the file (`name`)."""
    if entry is None:
        return 0

    def number(key: str, kinds: tuple, least: float) -> bool:
        value = entry.get(key)
        return isinstance(value, kinds) and not isinstance(value, bool) and value >= least

    ok = isinstance(entry, dict) and all(number(k, kinds, least) for k, kinds, least in (
        ("start", (int, float), 0), ("steps", int, 1), ("levels", int, 1), ("step", int, 0))) and entry["start"] > 0
    if not ok:
        raise UserError(f"{name}: mass_curriculum {entry!r} is not a mass curriculum's record (start, steps, levels, "
                        "step)")
    return entry["step"]


def assist_force(ball_pos: torch.Tensor, ball_vel: torch.Tensor, ref_pos: torch.Tensor, ref_vel: torch.Tensor,
                 mass: float, kp: float, kd: float, max_accel: float, factor: torch.Tensor) -> torch.Tensor:
    """The guiding force on the ball (N). ball_* and ref_* (N, 3) world frame, factor (N,) -> (N, 3)."""
    accel = kp * (ref_pos - ball_pos) + kd * (ref_vel - ball_vel)
    norm = accel.norm(dim=-1, keepdim=True)
    accel = accel * (max_accel / norm.clamp(min=1e-9)).clamp(max=1.0)
    return mass * factor.unsqueeze(-1) * accel


class BallAssist:
    """The assist factor and which episodes it applies to. Tensors on `device`; N environments."""

    def __init__(self, cfg: AssistConfig, num_envs: int, device: torch.device):
        if cfg.mode not in ("off", "schedule", "adaptive"):
            raise ValueError(f"unknown ball assist mode {cfg.mode!r}; choose 'off', 'schedule' or 'adaptive'")
        if not 0.0 <= cfg.probe_share <= 1.0:
            raise ValueError(f"ball assist probe share {cfg.probe_share}: must be within [0, 1]")
        if cfg.mode == "adaptive" and not cfg.hazard_high > cfg.hazard_low > 0:
            raise ValueError(f"ball assist: hazard_high {cfg.hazard_high} must exceed hazard_low {cfg.hazard_low} > 0")
        self.cfg = cfg
        self.on = cfg.mode != "off"
        self.assisted = torch.zeros(num_envs, dtype=torch.bool, device=device)  # (N,) this episode is assisted
        self.factor = torch.ones((), device=device) if self.on else torch.zeros((), device=device)
        # Decayed counts of the probes' steps on the clip's frames and of their early ends, starting from their
        # steady state at the high hazard: the factor starts at 1 and moves over the decay's memory.
        steady = max(num_envs * cfg.probe_share, 1.0) / (1.0 - cfg.hazard_decay)
        self.probe_steps = torch.full((), steady, device=device)
        self.probe_ends = torch.full((), steady * cfg.hazard_high, device=device)
        self.steps = torch.zeros((), dtype=torch.long, device=device)

    def start(self, env_ids: torch.Tensor, gen: torch.Generator) -> None:
        """Draw which of the starting episodes env_ids are assisted."""
        if self.on:
            u = torch.rand(env_ids.shape[0], device=self.assisted.device, generator=gen)
            self.assisted[env_ids] = u >= self.cfg.probe_share

    def env_factor(self, on_clip: torch.Tensor) -> torch.Tensor:
        """The factor of each environment: the current factor where assisted and on the clip's frames, else 0.
        on_clip (N,) bool -> (N,)."""
        return self.factor * (self.assisted & on_clip).to(self.factor.dtype)

    @property
    def hazard(self) -> torch.Tensor:
        """The probes' early-end rate per control step on the clip's frames (decayed). ()"""
        return self.probe_ends / self.probe_steps

    def update(self, terminated: torch.Tensor, on_clip: torch.Tensor) -> None:
        """After a control step, before the ended episodes restart: terminated (N,) bool (ended early), on_clip
        (N,) bool (the step was on the clip's frames). Moves the factor (no host sync)."""
        if not self.on:
            return
        self.steps += 1
        c = self.cfg
        if c.mode == "schedule":
            self.factor.copy_((1.0 - self.steps.float() / max(c.schedule_steps, 1)).clamp(min=0.0))
            return
        probe = ~self.assisted & on_clip
        self.probe_steps.mul_(c.hazard_decay).add_(probe.sum())
        self.probe_ends.mul_(c.hazard_decay).add_((probe & terminated).sum())
        level = torch.log(self.hazard.clamp(min=1e-9) / c.hazard_low) / math.log(c.hazard_high / c.hazard_low)
        self.factor.copy_(level.clamp(0.0, 1.0))

    def state_dict(self) -> dict:
        return {name: getattr(self, name).cpu().clone() for name in self._STATE}

    _STATE = ("assisted", "factor", "probe_steps", "probe_ends", "steps")

    def load_state_dict(self, state: dict) -> None:
        for name in self._STATE:
            getattr(self, name).copy_(state[name])
