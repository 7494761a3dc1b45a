"""Generalised advantage estimation, shared by the two PPO scripts (train_llc.py, train_hlc.py)."""

from __future__ import annotations

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, timeouts: torch.Tensor,
        next_value: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns. rewards, values, dones, timeouts (T, N); next_value (N,) -> two (T, N).

    dones marks the last step of an episode (a fall or a time-out); a time-out is not a failure, so its reward
    is bootstrapped with gamma * V(s_t), the value of the state it cut short (rsl_rl's choice), before
    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t) is summed backwards with gamma * lambda.
    """
    rewards = rewards + gamma * values * timeouts
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        nv = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * nv * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        advantages[t] = last
    return advantages, advantages + values
