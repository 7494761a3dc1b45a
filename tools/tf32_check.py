"""How far TF32 moves a skill policy's outputs from FP32's: the question behind train_llc.py's `--tf32` (with
`--bf16`, how far bfloat16 autocast does: train_llc.py's `--update-bf16`).

    python tools/tf32_check.py --checkpoint results/round6/layup_762M.pt            # on the GPU
    python tools/tf32_check.py --checkpoint skillmimic/assets/llc_policy.pt --device cpu --batch 256
    python tools/tf32_check.py --checkpoint skillmimic/assets/llc_layup.pt --device cpu --bf16

The policy's actor runs on `batch` normalised observations (standard normal, seeded) twice, with TF32 matrix
products off and on, and the tool prints the mean and largest change of the action means and the standard
deviation and largest change of the Gaussian log-probability PPO's ratio is made of (for an action drawn around the
FP32 mean, at the policy's fixed noise, log-std -2.9 unless `--log-std`); PPO clips that ratio at 1 +- 0.2, so a
change far below 0.2 leaves the update as it was. A CPU computes in FP32 either way: there every change is 0.
With `--bf16` the second pass runs under torch.autocast in bfloat16 instead (its output cast to FP32, as
train_llc.py's loss does), against FP32; a CPU has bf16 autocast too, with the same roundings of the products'
inputs and outputs.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package beside this folder
from skillmimic.cli import run_command  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.policy import load_policy  # noqa: E402


@dataclasses.dataclass
class Args:
    checkpoint: str
    """An exported skill policy (policy.pt)."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto' (the GPU where there is one)."""
    batch: int = 65536
    """Observations to compare on."""
    log_std: float = -2.9
    """The policy's log standard deviation (train_llc.py's fixed -2.9)."""
    seed: int = 0
    """Seed of the observations and the drawn actions."""
    bf16: bool = False
    """Compare bfloat16 autocast (train_llc.py's --update-bf16) with FP32 instead of TF32."""


def main(args: Args) -> None:
    if args.batch < 2:
        raise UserError(f"--batch {args.batch}: must be at least 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no GPU here")
    if not Path(args.checkpoint).is_file():
        raise UserError(f"{args.checkpoint}: no such policy file")
    device = torch.device(args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    policy = load_policy(args.checkpoint, device=device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    obs_n = torch.randn(args.batch, policy.num_obs, device=device, generator=g)  # (B, num_obs), normalised
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        with torch.no_grad():
            torch.backends.cuda.matmul.allow_tf32 = False
            mean_fp32 = policy.actor(obs_n)  # (B, num_actions)
            if args.bf16:  # the products' inputs and outputs in bf16, accumulated in FP32
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    mean_other = policy.actor(obs_n).float()
            else:
                torch.backends.cuda.matmul.allow_tf32 = True
                mean_other = policy.actor(obs_n)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    sigma = math.exp(args.log_std)
    d = mean_other - mean_fp32  # (B, num_actions)
    noise = torch.randn(mean_fp32.shape, device=device, generator=g) * sigma  # action - FP32 mean
    dlogp = ((noise.square() - (noise - d).square()) / (2 * sigma**2)).sum(-1)  # (B,) log N(a; other) - log N(a; fp32)
    other = "bf16 autocast" if args.bf16 else "TF32"
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu" if args.bf16
            else "cpu (FP32 either way)")
    print(f"{name}: {other} against FP32 on {args.batch:,} normalised observations: action means change by "
          f"{d.abs().mean():.2e} on average, {d.abs().max():.2e} at most; the log-probability by a standard deviation "
          f"of {dlogp.std():.3e}, {dlogp.abs().max():.3e} at most (PPO clips the ratio at 1 +- 0.2)")


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
