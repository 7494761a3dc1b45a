"""Running mean and variance as an nn.Module: its statistics are buffers, saved and loaded with the weights.

Imports only torch: a run on several processes hands it the cross-rank sum (`reduce`) from outside.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn


class EmpiricalNormalization(nn.Module):
    """Normalises inputs of shape (..., *shape) by running statistics gathered in training mode only.

    Shape: input (B, *shape) -> output (B, *shape). In eval mode the statistics are frozen.

    reduce: None on one process; under torchrun an in-place sum over the ranks (skillmimic.distributed's
    `all_reduce_sum_`), so that each update merges the batches of all ranks and all ranks keep the same statistics.
    """

    def __init__(self, shape: int | tuple[int, ...], eps: float = 1e-5, clip: float = 5.0,
                 reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.eps, self.clip = eps, clip
        self.reduce = reduce
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @property
    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.update(x)
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).clamp(-self.clip, self.clip)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the batch's statistics (Chan et al.'s parallel algorithm). x (B, *shape)."""
        x = x.reshape(-1, *self.mean.shape).float()
        if self.reduce is not None:
            n, batch_mean, batch_var = _global_moments(x, self.reduce)
        else:
            n = x.shape[0]
            batch_mean = x.mean(0)
            batch_var = x.var(0, unbiased=False)
        if n == 0:
            return
        total = self.count + n
        delta = batch_mean - self.mean
        w = n / total
        self.mean += (delta * w).to(self.mean.dtype)
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * w
        self.var.copy_((m2 / total).to(self.var.dtype))
        self.count.copy_(total)


def _global_moments(
    x: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Count, mean and variance of the rows of x (B, *shape) on all ranks together: sums in float64, one
    call of `reduce` (an in-place sum over the ranks). The variance is the population one, as in the
    single-process update."""
    shape = x.shape[1:]
    x = x.double().reshape(x.shape[0], -1)
    sums = torch.cat((x.new_tensor([x.shape[0]]), x.sum(0), x.square().sum(0)))
    reduce(sums)
    n, k = int(sums[0]), x.shape[1]
    mean = sums[1 : 1 + k] / max(n, 1)
    var = (sums[1 + k :] / max(n, 1) - mean.square()).clamp(min=0)
    return n, mean.reshape(shape).float(), var.reshape(shape).float()
