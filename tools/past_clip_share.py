"""Where a policy's training samples go: the share of training's control steps played past the clips' last frames,
where `--env.steps-after-clip` holds the reference and scores the body alone, and the reward on and past the clips.

    python tools/past_clip_share.py --checkpoint results/skills4/D_policy.pt --motion-dir data/BallPlay-M/run
    python tools/past_clip_share.py --checkpoint results/skills4/A_policy.pt --motion-dir data/BallPlay-M

The policy plays (its action means plus training's fixed noise, std exp(-2.9)) in train_llc.py's default training
environment (adaptive starts, 150 steps after the clip, 300-step episodes, restarts as in training) on plain MuJoCo,
on this computer's CPU; a teacher is fed the reference. After `burn_in` steps (the first episodes all start
together) it counts the next `steps` control steps of every world. Prints one line per skill label and one for
all: the share of steps past the clip, and the mean reward on the clip's frames and past them.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package and train_llc.py beside this folder
import train_llc  # noqa: E402
from skillmimic import skills  # noqa: E402
from skillmimic.cli import run_command  # noqa: E402
from skillmimic.envs.imitation import ImitationEnv, load_motions  # noqa: E402
from skillmimic.envs.loops import Loops  # noqa: E402
from skillmimic.envs.observations import skill_obs_dim  # noqa: E402
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.policy import load_policy  # noqa: E402


@dataclasses.dataclass
class Args:
    checkpoint: str
    """A policy file (a skill policy or a teacher)."""
    motion_dir: str = "data/BallPlay-M/run"
    """The clips it trains on (a folder of clips, or a folder of such folders)."""
    envs: int = 128
    """Worlds played at once."""
    steps: int = 300
    """Control steps counted per world, after the burn-in."""
    burn_in: int = 100
    """Control steps played first and not counted."""
    loops: tuple[int, ...] = ()
    """Labels whose clips loop past their last frame (--env.loops.labels); none by default."""
    seed: int = 0


def main(args: Args) -> dict:
    if args.envs < 1 or args.steps < 1 or args.burn_in < 0:
        raise UserError(f"--envs {args.envs}, --steps {args.steps}, --burn-in {args.burn_in}: envs and steps must "
                        "be at least 1, burn-in at least 0")
    if skills.outside_slots(args.loops):
        raise UserError(f"--loops {list(args.loops)}: a skill label is within [0, {skills.NUM_SLOTS - 1}]")
    if not Path(args.motion_dir).exists():
        raise UserError(f"--motion-dir {args.motion_dir}: no such folder")
    policy = load_policy(args.checkpoint, num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    torch.manual_seed(args.seed)
    cfg = dataclasses.replace(train_llc.Args().env, backend="mujoco", hand=policy.hand, physics=policy.physics,
                              ball_starts=policy.ball_starts, loops=Loops(args.loops))
    motions = load_motions(args.motion_dir, cfg)
    env = ImitationEnv(cfg, motions, args.envs, "cpu", seed=args.seed)
    noise = math.exp(-2.9)
    obs = env.reset()
    L = len(env.skill_labels)
    past, count, r_on, r_past = (torch.zeros(L) for _ in range(4))
    for k in range(args.burn_in + args.steps):
        # the frame this step scores, before any restart: past the clip unless the clip loops
        label = env.motion_label[env.motion_ids]
        is_past = env.frame_ids + 1 > motions.lengths[env.motion_ids] - 1
        if env.looping:
            is_past &= ~env.loop_table.looped[env.motion_ids]
        with torch.no_grad():
            mean = policy(obs, env.reference_obs() if policy.num_reference else None)
        obs, reward, _, _, _ = env.step(mean + noise * torch.randn_like(mean))
        if k < args.burn_in:
            continue
        is_past = is_past.float()
        count.index_add_(0, label, torch.ones_like(is_past))
        past.index_add_(0, label, is_past)
        r_past.index_add_(0, label, reward * is_past)
        r_on.index_add_(0, label, reward * (1 - is_past))
    rows = {}
    for i, lab in enumerate(env.skill_labels.tolist()):
        rows[skills.skill_name(lab)] = (past[i] / count[i], r_on[i] / (count[i] - past[i]).clamp(min=1),
                                        r_past[i] / past[i].clamp(min=1))
    rows["all"] = (past.sum() / count.sum(), r_on.sum() / (count - past).sum().clamp(min=1),
                   r_past.sum() / past.sum().clamp(min=1))
    print(f"{args.checkpoint} on {args.motion_dir}: {args.envs} worlds x {args.steps} steps after {args.burn_in}")
    print("| skill | steps past the clip | reward on the clip | reward past it |\n|---|---|---|---|")
    for name, (share, on, off) in rows.items():
        print(f"| {name} | {100 * float(share):.1f}% | {float(on):.3f} | {float(off):.3f} |")
    return {name: [float(x) for x in v] for name, v in rows.items()}


if __name__ == "__main__":
    run_command(main, Args, __doc__)
