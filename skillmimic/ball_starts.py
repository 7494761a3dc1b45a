"""Fitted ball starts: a reference ball that the model's ball can follow before the first hand contact.

Why: in 15 of the 39 pickup clips the ball rolls, bounces or is dribbled at frame 0. Its recorded position with the
velocity of a one-sided difference (and no spin) is not a state the model's ball follows: with the humanoid replayed
kinematically, the free ball strays 0.5 m from its recording before any hand touches it (008_010 by frame 13), so
the training episodes, which end there, teach nothing (docs/pickup_study.md, "The moving-ball clips' first state").
A start velocity fitted per clip keeps the free ball near the recording up to the contact, and the ball simulated
from it is a reference the simulator can follow: MotionSet(ball_starts=True) replaces the reference ball before
the first contact with it (skillmimic.motion).

- kinematic_ball_rollout: the ball free, the humanoid set to the reference at every physics step (as
  tools/ball_replay.py replays a clip), from a given ball state; the ball's position and velocities at each frame.
- free_window: the frames where the ball is free, 0..C: C the first labelled contact, or for a clip whose label is
  on at frame 0 (the dribble's end) the re-catch.
- fit_start: the start's linear velocity (3 parameters, no spin) by Nelder-Mead on the mean ball position error
  over frames 1..C.
- the file `ball_starts.json` beside the clips (read_ball_starts, write_ball_starts): the hand and the physics of
  the fit, and per clip file name its window, its fitted start, and the errors of the fit and of the recorded start.
  tools/fit_ball_starts.py writes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
import torch

from skillmimic import checkpoint
from skillmimic import model as M
from skillmimic.errors import UserError
from skillmimic.motion import FPS

if TYPE_CHECKING:
    from skillmimic.motion import MotionSet

FILE_NAME = "ball_starts.json"
FORMAT = "skillmimic-ball-starts/1"
# The Physics fields the free ball depends on; the wrists' gains do not (the humanoid is set, not driven).
BALL_PHYSICS = ("ball_mass", "palm", "hand_margin", "ball_restitution", "ball_rolling")
INITIAL_STEP = 0.3  # m/s: the Nelder-Mead simplex's size about each starting velocity


class BallStartsError(UserError):
    """A ball_starts.json that cannot be used; the message names the file and the problem."""


# --- the rollout -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class BallTrack:
    """The simulated ball at frames 0..F, world frame (frame 0: the start state)."""

    pos: np.ndarray  # (F + 1, 3) m
    lin_vel: np.ndarray  # (F + 1, 3) m/s
    ang_vel: np.ndarray  # (F + 1, 3) rad/s


def humanoid_steps(m: mujoco.MjModel, spec: M.ModelSpec, qpos: np.ndarray,
                   qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The humanoid's state at every physics step between the reference frames 0..F: qpos (F + 1, nq) and qvel
    (F + 1, nv) of the frames (MotionSet.state, float64) -> qpos (F * n, nq_h), qvel (F * n, nv_h), n physics steps a
    frame; qpos linearly interpolated with the root quaternion normalised, qvel interpolated (the ball left out)."""
    n = max(1, round((1 / FPS) / m.opt.timestep))
    hq, hv = spec.ball_qpos.start, spec.ball_qvel.start
    q_steps, v_steps = [], []
    for f in range(qpos.shape[0] - 1):
        qa, qb, va, vb = qpos[f], qpos[f + 1], qvel[f], qvel[f + 1]
        for k in range(n):
            a = k / n
            q = (1 - a) * qa + a * qb
            q[3:7] /= np.linalg.norm(q[3:7])
            q_steps.append(q[:hq])
            v_steps.append(((1 - a) * va + a * vb)[:hv])
    return np.array(q_steps).reshape(-1, hq), np.array(v_steps).reshape(-1, hv)


def kinematic_ball_rollout(m: mujoco.MjModel, spec: M.ModelSpec, qpos: np.ndarray, qvel: np.ndarray,
                           ball_pos: np.ndarray, ball_lin_vel: np.ndarray, ball_ang_vel: np.ndarray | None = None,
                           stop: int | None = None,
                           humanoid: tuple[np.ndarray, np.ndarray] | None = None) -> BallTrack:
    """The ball free from (ball_pos, ball_lin_vel, ball_ang_vel) (3,) each, world, at frame 0, with the humanoid
    set to the reference at every physics step (humanoid_steps) for frames 0..stop (default: all of qpos).
    qpos (F + 1, nq), qvel (F + 1, nv): the reference states of frames 0..F (their ball parts unused but for the
    quaternion, the identity); `humanoid`: humanoid_steps' output, when a caller rolls the same clip many times.
    Returns the ball at frames 0..stop, world frame (MuJoCo's free joint keeps the angular velocity in the body's
    frame: it is rotated by the ball's quaternion)."""
    stop = qpos.shape[0] - 1 if stop is None else stop
    human_q, human_v = humanoid if humanoid is not None else humanoid_steps(m, spec, qpos[: stop + 1],
                                                                            qvel[: stop + 1])
    n = max(1, round((1 / FPS) / m.opt.timestep))
    bq, bv = spec.ball_qpos, spec.ball_qvel
    hq, hv = bq.start, bv.start
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos[0], qvel[0]
    d.qpos[bq.start : bq.start + 3] = ball_pos
    d.qvel[bv.start : bv.start + 3] = ball_lin_vel
    w0 = np.zeros(3) if ball_ang_vel is None else np.asarray(ball_ang_vel, dtype=np.float64)
    mujoco.mju_rotVecQuat(d.qvel[bv.start + 3 : bv.stop], w0, _conjugate(d.qpos[bq.start + 3 : bq.stop]))
    pos, lin_vel, ang_vel = (np.empty((stop + 1, 3)) for _ in range(3))

    def record(f: int) -> None:
        pos[f], lin_vel[f] = d.qpos[bq.start : bq.start + 3], d.qvel[bv.start : bv.start + 3]
        mujoco.mju_rotVecQuat(ang_vel[f], d.qvel[bv.start + 3 : bv.stop], d.qpos[bq.start + 3 : bq.stop])

    record(0)
    for f in range(stop):
        for s in range(f * n, (f + 1) * n):
            d.qpos[:hq], d.qvel[:hv] = human_q[s], human_v[s]
            mujoco.mj_step(m, d)
        record(f + 1)
    return BallTrack(pos, lin_vel, ang_vel)


def _conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


# --- the window and the fit ------------------------------------------------------------------------------------


def free_window(contact: np.ndarray) -> tuple[int, str]:
    """The last frame C of the free ball, and why: contact (T,) bool, the clip's hand-ball contact label.
    'first contact': C is the first labelled frame; 're-catch': the label is on at frame 0 (the ball leaves the
    hand, as at a dribble's end), C is the first labelled frame after it first drops; 'none': no contact to find,
    C is the last frame."""
    on = np.flatnonzero(contact)
    if on.size == 0:
        return len(contact) - 1, "none"
    if on[0] > 0:
        return int(on[0]), "first contact"
    off = np.flatnonzero(~contact)
    if off.size == 0:
        return len(contact) - 1, "none"
    again = np.flatnonzero(contact[off[0]:])
    return (int(off[0] + again[0]), "re-catch") if again.size else (len(contact) - 1, "none")


@dataclasses.dataclass
class ClipReference:
    """What a fit needs of one clip, float64 on the CPU: the reference states and the recorded ball."""

    qpos: np.ndarray  # (T, nq)
    qvel: np.ndarray  # (T, nv)
    ball: np.ndarray  # (T, 3) the reference ball's position, world
    contact: np.ndarray  # (T,) bool, the hand-ball contact label


def clip_reference(motions: "MotionSet", motion_id: int) -> ClipReference:
    """Clip motion_id of a motion set as a ClipReference (its table's values, float32, in float64)."""
    T = int(motions.lengths[motion_id])
    ids = torch.full((T,), motion_id, dtype=torch.long, device=motions.device)
    frames = torch.arange(T, device=motions.device)
    rows = motions.rows(ids, frames)
    qpos, qvel = (x.cpu().double().numpy() for x in motions.state(ids, frames))  # (T, nq), (T, nv)
    return ClipReference(qpos, qvel, motions.table.ball_pos[rows].cpu().double().numpy(),
                         motions.table.contact[rows].cpu().numpy() > 0.5)


@dataclasses.dataclass
class StartFit:
    """A fitted start of one clip and how well the ball follows the recording from it and from the recorded one."""

    window_end: int  # C: the fit's window is frames 1..C
    window: str  # why C (free_window)
    lin_vel: np.ndarray  # (3,) m/s, world, the fitted start's
    ang_vel: np.ndarray  # (3,) rad/s, world (zeros: the fit is of the linear velocity alone)
    errors: np.ndarray  # (C,) m, the ball's distance from the recording at frames 1..C from the fitted start
    baseline_lin_vel: np.ndarray  # (3,) the recorded start's (the reference's one-sided difference)
    baseline_errors: np.ndarray  # (C,) from the recorded start
    rollouts: int  # rollouts the fit ran


def ball_errors(track: BallTrack, ball: np.ndarray) -> np.ndarray:
    """Distance (m) of the simulated ball from the recorded one at frames 1..F. ball (>= F + 1, 3) -> (F,)"""
    F = track.pos.shape[0] - 1
    return np.array([np.linalg.norm(track.pos[f] - ball[f]) for f in range(1, F + 1)])  # a norm a frame, as ever


def fit_start(m: mujoco.MjModel, spec: M.ModelSpec, clip: ClipReference, maxfev: int = 300,
              window_end: int | None = None) -> StartFit:
    """The start velocity of the ball of `clip` (its recorded position, no spin) that keeps the free ball closest
    to the recording over frames 1..C (C: free_window's, or window_end): Nelder-Mead on the mean distance, from
    the recorded velocity (a one-sided difference) and from the second-order one-sided difference, `maxfev`
    rollouts each; the better of the two. Nelder-Mead because the error is not smooth in the start (bounces,
    contacts); one run from each start is what the probe measured (results/pickup_study/ball_start_probe)."""
    from scipy.optimize import minimize  # only the fit needs scipy

    C, why = free_window(clip.contact) if window_end is None else (window_end, "given")
    bq, bv = spec.ball_qpos, spec.ball_qvel
    p0 = clip.qpos[0, bq.start : bq.start + 3]
    v_one = clip.qvel[0, bv.start : bv.start + 3].copy()
    x = clip.ball
    v_two = (-3 * x[0] + 4 * x[1] - x[2]) * FPS / 2
    humanoid = humanoid_steps(m, spec, clip.qpos[: C + 1], clip.qvel[: C + 1])
    count = [0]

    def errors(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        track = kinematic_ball_rollout(m, spec, clip.qpos, clip.qvel, p0, v, None, C, humanoid)
        return ball_errors(track, x)

    best = None
    for init in (v_one, v_two):
        simplex = np.vstack([init] + [init + INITIAL_STEP * e for e in np.eye(3)])
        r = minimize(lambda v: errors(v).mean(), init, method="Nelder-Mead",
                     options=dict(maxfev=maxfev, xatol=1e-3, fatol=1e-4, initial_simplex=simplex))
        if best is None or r.fun < best.fun:
            best = r
    return StartFit(C, why, np.asarray(best.x, dtype=np.float64), np.zeros(3), errors(best.x), v_one,
                    errors(v_one), count[0])


def first_beyond(errors: np.ndarray, distance: float) -> int | None:
    """The first frame (1-based: errors[i] is frame i + 1) where errors (F,) exceed distance; None: never."""
    i = np.flatnonzero(errors > distance)
    return int(i[0]) + 1 if i.size else None


# --- the file --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ClipStart:
    """One clip's entry of ball_starts.json."""

    window_end: int  # C: the reference ball is replaced over frames 0..C
    window: str  # why C (free_window)
    ball_pos: tuple[float, float, float]  # m, the reference's ball at frame 0 when fitted (a stale file is refused)
    lin_vel: tuple[float, float, float]  # m/s, world: the fitted start's
    ang_vel: tuple[float, float, float]  # rad/s, world
    fit_mean_m: float  # the ball's mean and largest distance from the recording over frames 1..C, from the fit
    fit_max_m: float
    baseline_mean_m: float  # the same from the recorded start
    baseline_max_m: float


@dataclasses.dataclass
class BallStarts:
    """A ball_starts.json: the model and physics the starts were fitted in, how, and each clip's start by its file
    name (clips not listed keep their recorded ball)."""

    hand: str
    physics: M.Physics
    consistent: str  # the MotionSet's reference fix the fit saw (skillmimic.motion.Consistent)
    fit: dict[str, Any]  # how the starts were made (parameters, maxfev, selection): a record, not read back
    clips: dict[str, ClipStart]

    def check_model(self, path: Path, hand: str, physics: M.Physics, consistent: str) -> None:
        """Refuse in one line a file fitted for another hand, other ball physics or another reference fix."""
        if self.hand != hand:
            raise BallStartsError(f"{path}: fitted with the {self.hand} hand, the clips are loaded for the {hand} "
                                  f"hand (refit with tools/fit_ball_starts.py --hand {hand})")
        other = [f"{k} {getattr(self.physics, k)} (here {getattr(physics, k)})" for k in BALL_PHYSICS
                 if getattr(self.physics, k) != getattr(physics, k)]
        if other:
            raise BallStartsError(f"{path}: fitted with other ball physics: {', '.join(other)}; refit with "
                                  f"tools/fit_ball_starts.py and these physics flags")
        if self.consistent != consistent:
            raise BallStartsError(f"{path}: fitted on clips loaded with consistent={self.consistent!r}, these are "
                                  f"loaded with {consistent!r}")


def write_ball_starts(path: str | Path, starts: BallStarts, overwrite: bool = False) -> None:
    """Write `starts` to path as JSON, atomically (a temporary file beside it, then renamed over it); an existing
    file is refused unless overwrite."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise BallStartsError(f"{path}: exists; pass --overwrite to replace it")
    head = {"format": FORMAT, "hand": starts.hand, "physics": starts.physics.as_dict(),
            "consistent": starts.consistent, "fit": starts.fit}
    clips = ",\n".join(f"  {json.dumps(name)}: {json.dumps(dataclasses.asdict(c))}" for name, c in starts.clips.items())
    text = "{\n" + "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items()) + \
        ' "clips": {\n' + clips + "\n }\n}\n"  # a clip a line
    checkpoint.write_atomic(path, lambda f: f.write(text), "w")


def read_ball_starts(path: str | Path) -> BallStarts:
    """Read and validate a ball_starts.json; anything wrong with it is one line naming the file and the problem."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise BallStartsError(f"{path}: cannot be read: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BallStartsError(f"{path}: not a JSON file: {e}") from None
    if not isinstance(doc, dict):
        raise BallStartsError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise BallStartsError(f"{path}: format {doc.get('format')!r}, expected {FORMAT!r} (refit with "
                              f"tools/fit_ball_starts.py)")
    hand = _get(doc, "hand", str, path)
    consistent = _get(doc, "consistent", str, path)
    physics_d = _get(doc, "physics", dict, path)
    try:
        physics = M.Physics(**physics_d)
    except TypeError as e:
        raise BallStartsError(f"{path}: unknown physical options {physics_d}: {e}") from None
    except UserError as e:
        raise BallStartsError(f"{path}: {e}") from None
    fit = _get(doc, "fit", dict, path)
    clips = {}
    for name, c in _get(doc, "clips", dict, path).items():
        where = f"clip {name}"
        if not isinstance(c, dict):
            raise BallStartsError(f"{path}: {where}: expected an object")
        entry = {}
        for f in dataclasses.fields(ClipStart):
            kind = {"int": int, "str": str, "float": float}.get(f.type, tuple)
            entry[f.name] = _get(c, f.name, kind, path, where)
        if entry["window_end"] < 1:
            raise BallStartsError(f"{path}: {where}: window_end {entry['window_end']} must be at least 1")
        clips[name] = ClipStart(**entry)
    return BallStarts(hand, physics, consistent, fit, clips)


def _get(d: dict, key: str, kind: type, path: Path, where: str = "") -> Any:
    """d[key] checked to be of `kind` (int: not a bool; float: a finite number; tuple: three finite numbers)."""
    at = f"{where}: " if where else ""
    if key not in d:
        raise BallStartsError(f"{path}: {at}missing field {key!r}")
    v = d[key]
    if kind is tuple:
        ok = isinstance(v, list) and len(v) == 3 and all(_finite(x) for x in v)
        v = tuple(float(x) for x in v) if ok else v
        want = "three finite numbers"
    elif kind is float:
        ok, want = _finite(v), "a finite number"
        v = float(v) if ok else v
    elif kind is int:
        ok, want = isinstance(v, int) and not isinstance(v, bool), "an integer"
    else:
        ok, want = isinstance(v, kind), {str: "a string", dict: "an object"}[kind]
    if not ok:
        raise BallStartsError(f"{path}: {at}{key} is {v!r}, expected {want}")
    return v


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
