"""Sticky exploration of a high-level controller (train_hlc.py --sticky): it sees the skill it played last and starts
out keeping it.

A near-uniform controller that re-decides every 3 control steps switches skills every few decisions, and random
switches among the skills fall: on throwing (2.9 m) such a controller fell in all 128 episodes of two seeds and
never succeeded, while one that keeps its previous skill with probability 0.99 at each decision (else draws
uniformly) succeeded in 4.3-7.8% (results/task_diagnosis/README.md, section 5). PPO learns only from the successes it
samples. With `sticky` = p > 0 the actor's input is the normalised observation followed by the one-hot of the
skill each world played last (zeros at an episode's start), and a learned bias b is added to that skill's logit,
starting at

    b = log(1 + p A / (1 - p))     (A skills)

so that the initial controller, whose network outputs about 0 (its last layer's scale 0.01), keeps the previous
skill with probability p + (1 - p) / A: "keep it with probability p, else draw uniformly", as
`tools/scripted_task.py --script random --stick p`. PPO can lower b, or learn when to switch from the one-hot. p = 0
is the controller without it (no one-hot, no bias), as files from before the option are read.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from skillmimic.errors import UserError


def check_sticky(p: float, what: str = "--sticky") -> None:
    """Refuse, in one line naming `what`, a probability outside [0, 1) (NaN included): 1 would never switch."""
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p < 1.0):
        raise UserError(f"{what} {p!r}: must be a probability in [0, 1) of keeping the previous skill (0: off)")


def keep_bias(p: float, num_actions: int) -> float:
    """The logit bias b on the previous skill with which zero logits keep it with probability p + (1 - p) / A."""
    return math.log1p(p * num_actions / (1.0 - p))


def last_one_hot(last: torch.Tensor, num_actions: int) -> torch.Tensor:
    """The one-hot of each world's last skill last (B,) long, -1 for none (an episode's start): zeros. -> (B, A)"""
    return F.one_hot(last.clamp(min=0), num_actions).float() * (last >= 0).float()[:, None]


class StickyActor(nn.Module):
    """A high-level actor that sees the skill played last: logits = net([obs_n, one_hot(last)]) + b * one_hot(last).
    net: a network of num_obs + num_actions inputs and num_actions outputs; b: a learned scalar, initialised to
    keep_bias(p, num_actions). obs_n (B, num_obs), last (B,) long in [-1, num_actions) -> logits (B, num_actions)."""

    def __init__(self, net: nn.Module, num_actions: int, p: float):
        super().__init__()
        self.net, self.num_actions = net, num_actions
        self.keep_bias = nn.Parameter(torch.tensor(keep_bias(p, num_actions)))

    def forward(self, obs_n: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        hot = last_one_hot(last, self.num_actions)  # (B, A)
        return self.net(torch.cat((obs_n, hot), dim=-1)) + self.keep_bias * hot
