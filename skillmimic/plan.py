"""What a training run will do, and what it tells its user about it: the sizes that follow the device unless the
user sets them, the start-up line, and the time taken and left on the progress line.

A CPU process gets a short run of a few environments: it shows the whole pipeline (warm start, rollouts, updates,
checkpoints, the policy file) in minutes, but a skill takes tens of millions of samples to learn (the layup: 11%
imitation accuracy after 63 million on an H200, README), tens of minutes to hours on a GPU; 410 iterations on a
2-core CPU (105,000 samples) learned nothing. So the CPU default is a few minutes' run with a note saying so, and a
GPU gets the long default. train_llc.py and train_hlc.py each pass their own `Defaults`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from skillmimic.device import resolve_device

CPU_ENVS = 8
"""Environments of a CPU process when --num-envs is not given (on a CPU 8,192 take 9 GB and minutes an iteration)."""


@dataclasses.dataclass(frozen=True)
class Defaults:
    """A script's iteration counts when --iterations is not given, by device."""

    gpu_iterations: int
    cpu_iterations: int = 100
    """About 2-10 minutes on a 2-core CPU at CPU_ENVS environments."""


def iterations(given: int | None, device: str, resume: dict | None, defaults: Defaults) -> int:
    """The iterations to run in all: --iterations if given; else, resuming, the run's own (it continues with the
    settings it was started with); else the device's default. device: --device ('auto', 'cpu', 'cuda')."""
    if given is not None:
        return given
    saved = (resume or {}).get("args", {}).get("iterations")
    if saved is not None:
        return int(saved)
    gpu = resolve_device(device).type == "cuda"
    return defaults.gpu_iterations if gpu else defaults.cpu_iterations


def startup(script: str, device: torch.device, sim, num_envs: int, world_size: int, num_steps: int,
            samples_per_step: int, total: int, run_dir: str | Path, resume: dict | None, resume_path: str | None,
            defaults: Defaults) -> str:
    """The lines a run prints before its first iteration: where it runs, how big it is, where it writes, where a
    resume starts; on a CPU, what such a run is for. sim: the environment's simulator (its backend and model);
    samples_per_step: simulator samples per environment and step (a high-level decision drives several)."""
    where = str(device)
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(device)})"
    if world_size > 1:
        where += f" x {world_size} processes"
    engine = {"mujoco": "plain MuJoCo", "mujoco_warp": "MuJoCo Warp"}.get(sim.backend, sim.backend)
    per_iteration = num_envs * num_steps * samples_per_step
    line = (f"{script}: {where}, {engine}, {sim.spec.hand} hand; {num_envs:,} environments x {num_steps} steps = "
            f"{per_iteration:,} samples an iteration")
    if resume is not None:
        line += (f"; resuming {resume_path} after iteration {resume['iteration']:,} ({resume['global_step']:,} "
                 f"samples), up to iteration {total:,}")
    else:
        line += f"; {total:,} iterations"
    line += f"; run folder {run_dir}"
    if device.type != "cuda":
        line += (f"\nnote: a CPU run is for trying the pipeline: {total:,} iterations are "
                 f"{total * per_iteration:,} samples, and a policy needs tens of millions to learn (tens of minutes "
                 f"to hours on a GPU, where the default is {defaults.gpu_iterations:,} iterations of thousands of "
                 f"environments); pass --iterations N for a longer run")
    return line


def clock(seconds: float) -> str:
    """A duration as h:mm:ss, or m:ss under an hour."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def time_left(elapsed: float, done: int, left: int) -> str:
    """'2:05 elapsed, 10:25 left' after `done` of this process's iterations took `elapsed` s, `left` to go."""
    if done <= 0:
        return f"{clock(elapsed)} elapsed"
    return f"{clock(elapsed)} elapsed, {clock(elapsed / done * left)} left"
