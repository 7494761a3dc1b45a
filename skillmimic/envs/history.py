"""The skill policy's own past: what it observed of itself and the ball at its last K control steps, given to it with
what it observes now (SkillMimic-V2's history). Off by default (K = 0), where nothing changes.

Why: in a dribble the state repeats within a clip (the same pose and ball come back every bounce), so from the state
alone the policy may not know where in the skill it is; its recent past tells. Not measured yet.

What the history holds: the humanoid's own part of the observation (envs/observations.py: humanoid_ball_obs, 804
numbers), the ball and the hand-ball contact included, of each of the K control steps before this one, oldest first.
The ball is kept because the phase a dribble repeats is as much the ball's (on its way down after the push, or up
after the bounce, at the same pose) as the body's. Never the reference (the policy never sees it) nor the skill
condition (the current one is in the observation). Each step's part is what the policy acted on at that step.

A world that starts an episode (a reset, drawn or given) has no past: its history is filled with the first state it
observes, as if it had stood still there; that is also what the warm start's demonstration sees. The history is
kept per world on the environment's device, in a (num_envs, K, 804) tensor moved by one step each control step.
A policy file records K ("history_steps"; files without it: 0), so that the evaluation, play.py, the switch
evaluation and the task environments driving it rebuild its observation from the file alone.
"""

from __future__ import annotations

import dataclasses

import torch

from skillmimic.errors import UserError


@dataclasses.dataclass
class History:
    steps: int = 0
    """Past control steps whose own observation (humanoid and ball) the skill policy observes with the present
    one, oldest first (envs/history.py); 0: off. A policy file records it."""

    def check(self) -> None:
        """Refuse a value that cannot work, in one line naming the flag."""
        if self.steps < 0:
            raise UserError(f"--env.history.steps {self.steps}: must be 0 (off) or more")


class HistoryBuffer:
    """Per world, the own observations of its last `steps` control steps: `past` (num_envs, steps, dim), oldest first,
    on `device`. With steps 0 it holds nothing and does nothing.

    read(own) with the observation of now (at each observation), push() at each control step, restart(env_ids) when
    worlds start an episode."""

    def __init__(self, num_envs: int, steps: int, dim: int, device: torch.device):
        self.steps = steps
        self.past = torch.zeros(num_envs, steps, dim, device=device)  # (N, K, D)
        self.fresh = torch.ones(num_envs, dtype=torch.bool, device=device)  # (N,) started, history not yet filled
        # (N, D) the observation last read, the one acted on (none kept when off)
        self.now = torch.zeros(num_envs, dim if steps else 0, device=device)

    def restart(self, env_ids: torch.Tensor) -> None:
        """Worlds env_ids (B,) start an episode: their history is filled with the next observation read."""
        if self.steps:
            self.fresh[env_ids] = True

    def read(self, own: torch.Tensor) -> torch.Tensor:
        """The history to observe with `own` (N, D), the own observation of now, which it keeps for push(); worlds
        started since the last read get `own` at every step. -> (N, steps * D), oldest first."""
        if not self.steps:
            return own[:, :0]
        self.past = torch.where(self.fresh[:, None, None], own[:, None], self.past)
        self.fresh.zero_()
        self.now = own
        return self.past.flatten(1)

    def push(self) -> None:
        """A control step is taken from the state last read: it becomes the newest past step."""
        if self.steps:
            self.past = torch.cat((self.past[:, 1:], self.now[:, None]), dim=1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What continues these histories exactly, as CPU tensors."""
        return {"past": self.past.cpu().clone(), "fresh": self.fresh.cpu().clone(), "now": self.now.cpu().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.past.copy_(state["past"])
        self.fresh.copy_(state["fresh"])
        self.now.copy_(state["now"])
