"""Can the model's hand keep the ball at all? The humanoid replays a clip kinematically (its joints set to the
reference at every physics step, its velocities too), the ball is simulated, and the ball's distance from its
reference is measured: an upper bound on what any policy can do with the ball in a given physics.

    python tools/ball_replay.py --motion-dir data/BallPlay-M/layup                 # every physics variant
    python tools/ball_replay.py --variants base cushion --starts 0 52
    python tools/ball_replay.py --variants base --ball-restitution 0.82 --ball-rolling 0.4   # the ball on the floor

For each variant (a change of the model's contact physics, see VARIANTS) and each start frame, plain MuJoCo (CPU)
is reset to the start's reference state; then, for every control step, each of its physics steps first sets the
humanoid's qpos (linearly interpolated between frames, the root quaternion normalised) and qvel to the reference,
then steps. Prints one markdown row per variant: the ball's error (cm) at the end of each window and its
median over the window, and the frame where it first strays more than `lost` m from the reference.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import torch

from skillmimic import DATA
from skillmimic import model as M
from skillmimic.ball_starts import ball_errors, kinematic_ball_rollout
from skillmimic.cli import run_command
from skillmimic.motion import MotionSet


def _ball_geom(m: mujoco.MjModel) -> int:
    return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")


def _set(**opt):
    def apply(m):
        for k, v in opt.items():
            setattr(m.opt, k, v)
    return apply


def _ball_friction(mu: float, condim: int = 3):
    def apply(m):
        b = _ball_geom(m)
        m.geom_friction[b, 0] = mu
        m.geom_condim[b] = condim
    return apply


def _hand_solref(timeconst: float):
    def apply(m):
        m.geom_solref[_ball_geom(m), 0] = timeconst
        m.geom_solref[M.hand_geoms(m), 0] = timeconst
    return apply


# name -> (physics, model edits): each a change of one thing from 'base' (train_llc.py's default: palm, no cushion)
VARIANTS = {
    "cushion": (M.Physics(palm=True, hand_margin=M.LEGACY_HAND_MARGIN), []),
    "cushion-nopalm": (M.Physics(hand_margin=M.LEGACY_HAND_MARGIN), []),
    "base": (M.Physics(palm=True), []),
    "nopalm": (M.Physics(), []),
    "7kg": (M.Physics(palm=True, ball_mass=7.2), []),
    "mu2": (M.Physics(palm=True), [_ball_friction(2.0)]),
    "condim6": (M.Physics(palm=True), [_ball_friction(1.2, 6)]),
    "elliptic": (M.Physics(palm=True), [_set(cone=mujoco.mjtCone.mjCONE_ELLIPTIC, impratio=10.0)]),
    "stiff": (M.Physics(palm=True), [_hand_solref(0.004), _set(timestep=1 / 480)]),
    "dt240": (M.Physics(palm=True), [_set(timestep=1 / 240)]),
}


@dataclasses.dataclass
class Args:
    motion_dir: str = str(DATA / "layup")
    """The clip (a file or a folder; the first clip is replayed)."""
    hand: M.Hand = "rigid"
    """The hand's model."""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """Physics variants to replay (names of VARIANTS)."""
    starts: tuple[int, ...] = (0, 20, 45, 52, 90)
    """Start frames; each window runs to the next start (the last to the clip's end)."""
    lost: float = 0.15
    """Distance from the reference (m) that counts as the ball lost."""
    ball_restitution: float | None = None
    """Physics.ball_restitution for every variant (None: each variant's own, the MJCF's)."""
    ball_rolling: float | None = None
    """Physics.ball_rolling (m/s^2) for every variant (None: each variant's own, the MJCF's)."""


def replay(motions: MotionSet, m: mujoco.MjModel, start: int, stop: int) -> np.ndarray:
    """Ball position error (m) at frames start+1 .. stop of the first clip, humanoid kinematic, the ball free from
    the reference's state at `start` (skillmimic.ball_starts.kinematic_ball_rollout). -> (stop-start,)"""
    spec, frames = motions.spec, torch.arange(start, stop + 1)
    qpos, qvel = (x.double().numpy() for x in motions.state(torch.zeros_like(frames), frames))  # (F+1, nq), (F+1, nv)
    b, v = spec.ball_qpos.start, spec.ball_qvel.start
    track = kinematic_ball_rollout(m, spec, qpos, qvel, qpos[0, b : b + 3], qvel[0, v : v + 3], qvel[0, v + 3 : v + 6])
    return ball_errors(track, motions.table.ball_pos[start : stop + 1].double().numpy())


def measure(args: Args) -> dict:
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    motions = MotionSet(args.motion_dir, hand=args.hand)
    motions.files, last = motions.files[:1], int(motions.lengths[0]) - 1
    bounds = [*args.starts, last]
    windows = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    print(f"{motions.files[0].name}, {args.hand} hand, humanoid kinematic; ball error (cm) at the window's end "
          f"(median over the window); frame first > {args.lost} m\n")
    print("| variant | " + " | ".join(f"{a}-{b}" for a, b in windows) + " |")
    print("| --- |" + " --- |" * len(windows))
    out = {}
    for name in args.variants:
        physics, edits = VARIANTS[name]
        for field in ("ball_restitution", "ball_rolling"):
            if getattr(args, field) is not None:
                physics = dataclasses.replace(physics, **{field: getattr(args, field)})
        m = M.load_model(args.hand, physics=physics)
        for e in edits:
            e(m)
        cells = []
        for a, b in windows:
            err = replay(motions, m, a, b)
            lost = np.flatnonzero(err > args.lost)
            cells.append(f"{100 * err[-1]:.0f} ({100 * np.median(err):.0f})"
                         + (f" lost@{a + 1 + lost[0]}" if lost.size else ""))
            out[(name, a)] = err
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return out


if __name__ == "__main__":
    run_command(measure, Args, description=__doc__)
