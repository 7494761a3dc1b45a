"""Training starts with the ball perturbed: a share of the reference-state starts put the ball a little off the
data's position and velocity, so that the policy practises getting back a ball that is not where the data has it.

Why: on the layup every failed evaluation episode of round 6 lost the ball first, in the dribble's push to the
floor or at the catch (docs/llc_recipe.md, "What limits it"); reference starts only ever show the policy the data's
ball, and one that drifts a few centimetres or comes back faster than the data's is never practised until it is
lost. Not measured yet (round 8).

The noise acts on the starts the environment draws itself (training's), never on starts given to it (the
evaluation's, play.py's, the warm start's demonstration), and the evaluation's EnvConfig keeps it off. It is not
restricted to some frames: adaptive starts already put most starts where episodes fail, and a frame window would
be one clip's while the configuration serves every skill.
"""

from __future__ import annotations

import dataclasses

import torch

from skillmimic.errors import UserError, check_finite_nonnegative
from skillmimic.model import ModelSpec


@dataclasses.dataclass
class BallNoise:
    share: float = 0.0
    """Share of the training starts whose ball is perturbed, drawn at each start; 0: off."""
    pos: float = 0.03
    """Std of the Gaussian noise on each of the ball's coordinates (m)."""
    vel: float = 0.5
    """Std of the Gaussian noise on each component of the ball's linear velocity (m/s)."""

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the flags."""
        if not 0.0 <= self.share <= 1.0:
            raise UserError(f"--env.ball-noise.share {self.share}: must be within [0, 1]")
        for name in ("pos", "vel"):
            check_finite_nonnegative(getattr(self, name), f"--env.ball-noise.{name}",
                                     "0 or more (a standard deviation)")


def perturb_ball(qpos: torch.Tensor, qvel: torch.Tensor, spec: ModelSpec, cfg: BallNoise,
                 gen: torch.Generator) -> None:
    """Add cfg's noise to the ball of a random share of the starts, in place: qpos (B, nq) and qvel (B, nv) of the
    model `spec` describes. Draws 7 B numbers from `gen` whatever is perturbed, none of the humanoid's state is
    touched, and the ball's orientation and spin are kept."""
    B, dev = qpos.shape[0], qpos.device
    on = (torch.rand(B, device=dev, generator=gen) < cfg.share).to(qpos.dtype)[:, None]  # (B, 1)
    p, v = spec.ball_qpos.start, spec.ball_qvel.start  # the ball's position (3) and linear velocity (3), world
    qpos[:, p : p + 3] += on * cfg.pos * torch.randn(B, 3, device=dev, generator=gen, dtype=qpos.dtype)
    qvel[:, v : v + 3] += on * cfg.vel * torch.randn(B, 3, device=dev, generator=gen, dtype=qvel.dtype)
