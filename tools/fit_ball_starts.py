"""Fit the frame-0 ball velocity of a folder's moving-ball clips and write <folder>/ball_starts.json, which
MotionSet(ball_starts=True) and train_llc.py --env.ball-starts read (skillmimic.ball_starts says why).

    python tools/fit_ball_starts.py --motion-dir data/BallPlay-M/pick_40        # the pickup (a few minutes)
    python tools/fit_ball_starts.py --motion-dir D --physics.ball-restitution 0.82 --physics.ball-rolling 0.4

A clip is fitted when its ball moves at frame 0 (faster than --min-speed) or its contact label is on there (the
ball in the hand at a dribble's end). For each, with the humanoid replayed kinematically and the ball free, the
start velocity (3 numbers, no spin) is fitted by Nelder-Mead to the mean ball position error over frames 1..C (C:
the first contact, or the re-catch), from the recorded velocity and from the second-order difference. Prints a
markdown table (baseline: the recorded start; fitted), progress on stderr, and writes the file atomically; an
existing file is replaced only with --overwrite. The physics must be those of the training that will use it
(recipe: the rigid hand with the palm).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from skillmimic import DATA
from skillmimic import ball_starts as BS
from skillmimic import model as M
from skillmimic.cli import check_counts, run_command
from skillmimic.device import cpu_threads
from skillmimic.errors import UserError
from skillmimic.motion import MotionSet


@dataclasses.dataclass
class Args:
    motion_dir: str = str(DATA / "pick_40")
    """The clip folder (its own *.pt files; the file is written in it)."""
    hand: M.Hand = "rigid"
    """The hand's model (the recipe's, skillmimic.recipe.training_env)."""
    physics: M.Physics = dataclasses.field(default_factory=lambda: M.Physics(palm=True))
    """The physics to fit in: the training's (the recipe's --env.physics.palm by default)."""
    min_speed: float = 0.2
    """Fit the clips whose ball moves faster than this (m/s) at frame 0, or whose contact label is on there."""
    maxfev: int = 300
    """Most rollouts of each of the two Nelder-Mead runs (the probe's 300: about 7 s for a clip whose C is 79)."""
    overwrite: bool = False
    """Replace an existing ball_starts.json."""


def _cells(errors: np.ndarray) -> str:
    """frame first > 15 cm / first > 50 cm ('never': not before C) / mean / max (cm)"""
    first = [BS.first_beyond(errors, d) for d in (0.15, 0.5)]
    return " / ".join("never" if f is None else str(f) for f in first) + \
        f" / {100 * errors.mean():.1f} / {100 * errors.max():.0f}"


def _vec(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.2f}" for x in v) + ")"


def fit_folder(args: Args) -> BS.BallStarts:
    folder = Path(args.motion_dir)
    if not folder.is_dir():
        raise UserError(f"--motion-dir {folder}: not a folder (the file is written in the clips' folder)")
    check_counts(args, "maxfev")
    out = folder / BS.FILE_NAME
    if out.exists() and not args.overwrite:
        raise UserError(f"{out}: exists; pass --overwrite to replace it")
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise UserError(f"--motion-dir {folder}: no .pt clips in it")
    motions = MotionSet(files, hand=args.hand, consistent="ball")  # (the default fix, which the file records)
    t, first = motions.table, motions.starts
    moving = (t.ball_vel[first].norm(dim=-1) > args.min_speed) | (t.contact[first] > 0.5)  # (num_motions,)
    chosen = moving.nonzero().flatten().tolist()
    m = M.load_model(args.hand, physics=args.physics)
    print(f"{folder}: {len(chosen)} of {len(files)} clips with the ball moving at frame 0 (> {args.min_speed} m/s) "
          f"or in the hand; {args.hand} hand, {args.physics}; Nelder-Mead from 2 starts, at most {args.maxfev} "
          f"rollouts each\n")
    print("Cells: frame first > 15 cm / first > 50 cm ('never': not before C) / mean / max error (cm), frames 1..C.\n")
    print("| clip | C | recorded start (m/s) | fitted start (m/s) | recorded | fitted |")
    print("|---|---|---|---|---|---|")
    clips, t0 = {}, time.time()
    for k, i in enumerate(chosen):
        name = motions.files[i].name
        clip = BS.clip_reference(motions, i)
        with cpu_threads(1):
            fit = BS.fit_start(m, motions.spec, clip, args.maxfev)
        c = f"{fit.window_end}" + (" (re-catch)" if fit.window == "re-catch" else "")
        print(f"| {name.removesuffix('.pt')} | {c} | {_vec(fit.baseline_lin_vel)} | {_vec(fit.lin_vel)} | "
              f"{_cells(fit.baseline_errors)} | {_cells(fit.errors)} |", flush=True)
        clips[name] = BS.ClipStart(
            window_end=fit.window_end, window=fit.window, ball_pos=tuple(clip.ball[0].tolist()),
            lin_vel=tuple(fit.lin_vel.tolist()), ang_vel=tuple(fit.ang_vel.tolist()),
            fit_mean_m=float(fit.errors.mean()), fit_max_m=float(fit.errors.max()),
            baseline_mean_m=float(fit.baseline_errors.mean()), baseline_max_m=float(fit.baseline_errors.max()))
        spent = time.time() - t0
        print(f"clip {k + 1} of {len(chosen)} ({name}): {fit.rollouts} rollouts; {spent:.0f} s, about "
              f"{spent / (k + 1) * (len(chosen) - k - 1):.0f} s left", file=sys.stderr, flush=True)
    starts = BS.BallStarts(
        hand=args.hand, physics=args.physics, consistent="ball",
        fit={"tool": "tools/fit_ball_starts.py", "parameters": "linear velocity (3), no spin",
             "objective": "mean ball position error (m), frames 1..C", "maxfev": args.maxfev,
             "min_speed": args.min_speed},
        clips=clips)
    BS.write_ball_starts(out, starts, overwrite=args.overwrite)
    print(f"\nwrote {out} ({len(clips)} clips)")
    return starts


if __name__ == "__main__":
    run_command(fit_folder, Args, description=__doc__)
