"""Evaluate a high-level policy: its task's success rate over M episodes, as a table and JSON.

    python -m skillmimic.evaluate_task --task scoring --episodes 256      # the shipped high-level policy
    python -m skillmimic.evaluate_task --checkpoint runs/hlc/policy.pt --episodes 256    # train_hlc.py's

The task, its settings and the skill policy come from the policy file, and the hand from the skill policy. The
skill policy is the file it was trained on, found by its sha256 and its path in the package, or `--llc`, which
must be that file too (skillmimic.llc_link; `python -m skillmimic.relink_hlc` makes a high-level policy name another).
Each episode starts at a random frame of the task's starting clips with a new goal; the high-level policy takes
its most likely skill every 3 control steps, and the episode ends at its first success, fall or time-out
(`max_episode_steps`). The skill evaluation of the same family is `python -m skillmimic.evaluate`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from skillmimic import DATA
from skillmimic.cli import check_counts, run_command
from skillmimic.device import resolve_device
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig, make_task_env
from skillmimic.llc_link import shipped_hlc
from skillmimic.outputs import check_file
from skillmimic.sim import Backend
from skillmimic.tasks import TaskName


@dataclasses.dataclass
class Args:
    task: TaskName | None = None
    """Evaluate the high-level policy of this task shipped with the package (with --checkpoint: check that the
    checkpoint was made for this task)."""
    checkpoint: str | None = None
    """An exported high-level policy (train_hlc.py's policy.pt); default: the shipped one of --task, else
    runs/hlc/policy.pt."""
    llc: str | None = None
    """The skill policy it drives (default: the one it was trained on, found by its sha256 and its path in the
    package); it must be that file."""
    motion_dir: str = str(DATA)
    """Clips whose frames start the episodes."""
    episodes: int = 256
    """Episodes (run in parallel)."""
    max_episode_steps: int = 600
    """Longest episode, in control steps (60 Hz)."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    backend: Backend = "auto"
    """Simulator backend (see SimConfig)."""
    seed: int = 0
    """Seed of the starts and goals."""
    json_out: str | None = None
    """Also write the results to this JSON file."""


@torch.no_grad()
def run_episodes(env: TaskEnv, policy) -> dict[str, torch.Tensor]:
    """Play every world's episode to its first end, policy(obs, last skills) picking the skills (a TaskPolicy; a
    sticky one reads the last skills, skillmimic.sticky). -> success, fell (bool) and steps (long), each (E,)."""
    E = env.num_envs
    obs = env.reset()
    done = torch.zeros(E, dtype=torch.bool, device=env.device)
    out = {"success": torch.zeros(E, dtype=torch.bool, device=env.device),
           "fell": torch.zeros(E, dtype=torch.bool, device=env.device),
           "steps": torch.zeros(E, dtype=torch.long, device=env.device)}
    while not bool(done.all()):
        obs, _, terminated, truncated, info = env.step(policy(obs, env.last_skill))
        now = (terminated | truncated) & ~done
        out["success"] |= now & info["success"]
        out["fell"] |= now & info["fell"]
        out["steps"] = torch.where(now, info["episode_steps"], out["steps"])
        done |= now
    return out


def main(args: Args) -> dict:
    check_counts(args, "episodes", "max_episode_steps")
    check_file(args.json_out, "--json-out")  # before the work, which a typo would waste
    device = resolve_device(args.device)
    path = args.checkpoint or (shipped_hlc(args.task) if args.task else "runs/hlc/policy.pt")
    # A wrong or non-finite file, or a skill policy other than the one it was trained on: one line.
    env_cfg = TaskEnvConfig(backend=args.backend, max_episode_steps=args.max_episode_steps, auto_reset=False)
    env, policy = make_task_env(env_cfg, args.motion_dir, args.episodes, device, args.seed, task=args.task,
                                llc=args.llc, hlc=path)
    task = policy.info["task"]
    out = run_episodes(env, policy)
    result = {"task": task, "episodes": args.episodes, "success": float(out["success"].float().mean()),
              "fell": float(out["fell"].float().mean()),
              "timed_out": float((~out["success"] & ~out["fell"]).float().mean()),
              "mean_episode_steps": float(out["steps"].float().mean()), "llc": str(env.llc.path)}
    print(f"{'task':<10} {'success':>8} {'fell':>6} {'timed out':>10} {'steps':>6}")
    print(f"{task:<10} {100 * result['success']:>7.1f}% {100 * result['fell']:>5.1f}% "
          f"{100 * result['timed_out']:>9.1f}% {result['mean_episode_steps']:>6.0f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"checkpoint": str(path), "args": dataclasses.asdict(args),
                                                   **result}, indent=2))
    return result


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
