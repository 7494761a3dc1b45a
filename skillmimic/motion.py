"""BallPlay-M clips: loading with validation, derived quantities, and a batched reference table.

A clip is a `[T, 337]` float tensor saved with `torch.save` (columns in `data/BallPlay-M/README.md`). Its skill
label is the first three characters of its file name. Loading never runs code (`weights_only=True`) and maps
tensors saved on a GPU to the CPU. Any bad input raises `MotionError` with one line naming the file and the problem.

`MotionSet` concatenates every clip's frames into flat tables of shape `(num_frames, ...)` on one device, so the
reference frames of thousands of environments are one gather: `motion_set.frames(motion_ids, frame_ids)`. Its
hinge angles, velocities and states are in the layout of one hand's model (`hand`, see skillmimic.model).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Literal, Union

import numpy as np
import torch

from skillmimic import model as M
from skillmimic import reference_fix, rotations, torchfile
from skillmimic.device import cpu_threads
from skillmimic.errors import UserError

FPS = 60.0
NUM_COLUMNS = 337
# Column ranges of one frame.
ROOT_POS = slice(0, 3)
ROOT_ROT = slice(3, 6)  # exponential map; 6:9 repeats it
JOINT_ROT = slice(9, 165)  # 52 joints x 3, exponential maps
BODY_POS = slice(165, 324)  # 53 bodies x 3, recorded world positions
BALL_POS = slice(324, 327)
CONTACT = 336  # hand-ball contact label, 0 or 1

PathLike = Union[str, Path]
Consistent = Literal["off", "ball", "all"]


class MotionError(UserError):
    """A clip or motion source that cannot be used; the message names the file and the problem."""


def skill_label(path: PathLike) -> int:
    """The skill label of a clip: the first three characters of its file name, as an integer ('031...' -> 31)."""
    name = Path(path).name
    if len(name) < 3 or not name[:3].isdigit():
        raise MotionError(f"{path}: the file name must start with a three-digit skill label (like 031_layup.pt)")
    return int(name[:3])


def load_clip(path: PathLike) -> torch.Tensor:
    """Read and validate one clip. Returns a float32 CPU tensor of shape (T, 337)."""
    path = Path(path)
    skill_label(path)
    if not path.is_file():
        raise MotionError(f"{path}: no such file")
    try:
        x = torchfile.load(path)
    except torchfile.Unreadable as e:
        raise MotionError(f"{path}: {e}") from None
    if not isinstance(x, torch.Tensor):
        raise MotionError(f"{path}: holds a {type(x).__name__}, expected a tensor of shape [T, {NUM_COLUMNS}]")
    if x.dim() != 2 or x.shape[1] != NUM_COLUMNS:
        raise MotionError(f"{path}: shape {list(x.shape)}, expected [T, {NUM_COLUMNS}]")
    if x.shape[0] < 2:
        raise MotionError(f"{path}: {x.shape[0]} frame(s); a clip needs at least 2")
    if not x.is_floating_point():
        raise MotionError(f"{path}: dtype {x.dtype}, expected a floating-point tensor")
    bad = ~torch.isfinite(x)
    if bad.any():
        t, c = (int(i) for i in bad.nonzero()[0])
        raise MotionError(f"{path}: {int(bad.sum())} non-finite value(s), the first at frame {t}, column {c}")
    return x.float()


def find_clips(source: Union[PathLike, Iterable[PathLike]]) -> list[Path]:
    """Clip files of a file, a folder (searched recursively for *.pt, sorted) or a list of either."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise MotionError("no motion files given (an empty list)")
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.pt") if f.is_file())
            if not found:
                raise MotionError(f"{p}: a folder with no .pt clips in it")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise MotionError(f"{p}: no such file or folder")
    return files


@dataclasses.dataclass
class MotionFrames:
    """Reference quantities of a batch of frames; every field has leading shape (B,)."""

    root_pos: torch.Tensor  # (B, 3) world
    root_quat: torch.Tensor  # (B, 4) wxyz, world
    root_lin_vel: torch.Tensor  # (B, 3) world
    root_ang_vel: torch.Tensor  # (B, 3) world
    dof_pos: torch.Tensor  # (B, D) hinge angles of the model's D hinges
    dof_vel: torch.Tensor  # (B, D)
    body_pos: torch.Tensor  # (B, 53, 3) the model's forward kinematics of this frame, world
    body_quat: torch.Tensor  # (B, 53, 4) wxyz, world
    body_vel: torch.Tensor  # (B, 53, 3) world
    body_pos_recorded: torch.Tensor  # (B, 53, 3) as captured (columns 165:324)
    ball_pos: torch.Tensor  # (B, 3) world
    ball_vel: torch.Tensor  # (B, 3) world
    ball_ang_vel: torch.Tensor  # (B, 3) world; 0 but on the frames of fitted ball starts (the data has no spin)
    contact: torch.Tensor  # (B,) hand-ball contact label, 0.0 or 1.0


def _central_difference(x: torch.Tensor, fps: float) -> torch.Tensor:
    """Velocity of a sequence x (T, ...) by central differences inside, one-sided at the two ends."""
    d = (x[1:] - x[:-1]) * fps  # (T-1, ...)
    return _average_forward(d)


def _average_forward(d: torch.Tensor) -> torch.Tensor:
    """From forward differences d (T-1, ...) to per-frame rates (T, ...): means of neighbours, ends copied."""
    inner = 0.5 * (d[1:] + d[:-1])
    return torch.cat((d[:1], inner, d[-1:]), dim=0)


BLEND_FRAMES = 10  # frames over which a fitted ball start's offset at C falls to the recording (1/6 s)


def blend_ball(recorded: np.ndarray, recorded_vel: torch.Tensor, track) -> tuple[torch.Tensor, ...]:
    """One clip's reference ball with a simulated stretch (MotionSet's ball_starts): recorded (T, 3) positions and
    recorded_vel (T, 3) velocities, float64; track: skillmimic.ball_starts.BallTrack of frames 0..C. Frames 0..C
    take the track's position, velocity and spin; frames C+1..C+BLEND_FRAMES the recorded position plus the offset
    at C times (1 - j / BLEND_FRAMES) (j frames after C: at C+BLEND_FRAMES the recording), their velocity the
    central difference of those positions; later frames stay as recorded, bit for bit. Spin is 0 after C.
    -> position, velocity, angular velocity, (T, 3) each, float64, world."""
    C, T = track.pos.shape[0] - 1, recorded.shape[0]
    pos = torch.from_numpy(recorded).clone()
    pos[: C + 1] = torch.from_numpy(track.pos)
    end = min(C + BLEND_FRAMES, T - 1)  # the last frame whose velocity the blend changes
    j = torch.arange(1, end - C + 1, dtype=torch.float64)[:, None]  # (end - C, 1)
    pos[C + 1 : end + 1] += (pos[C] - torch.from_numpy(recorded[C])) * (1 - j / BLEND_FRAMES)
    vel = recorded_vel.clone()
    vel[: C + 1] = torch.from_numpy(track.lin_vel)
    vel[C + 1 : end + 1] = _central_difference(pos, FPS)[C + 1 : end + 1]
    spin = torch.zeros_like(pos)
    spin[: C + 1] = torch.from_numpy(track.ang_vel)
    return pos, vel, spin


def _quat_rate(q: torch.Tensor, fps: float) -> torch.Tensor:
    """World angular velocity of a sequence of unit quaternions q (T, ..., 4) -> (T, ..., 3)."""
    return _average_forward(rotations.angular_velocity(q[:-1], q[1:], 1.0 / fps))


class MotionSet:
    """All frames of a set of clips as flat tables on one device, in the layout of one hand's model.

    Attributes:
        spec: the model (skillmimic.model.ModelSpec of `hand`) whose hinges, states and kinematics the tables hold.
        files: the clip files, in load order (motion id = index).
        labels: (num_motions,) skill label of each clip (31 for '031...').
        lengths: (num_motions,) frames per clip; starts: (num_motions,) row of each clip's first frame.
        table: MotionFrames whose fields have leading shape (num_frames,).

    `consistent` moves the frames where the data does not fit the model (skillmimic.reference_fix), before the
    velocities are taken: 'ball' moves the ball out of the floor and the hands; 'all' also lifts the humanoid
    out of the floor; 'off' keeps the data's positions. The default, 'ball', is the part that costs nothing:
    measured on every 7th frame of all 101 clips (rigid hand, docs/reference_consistency.md), it halves the starts
    whose ball is off by more than 1 m/s after one open-loop step (476 -> 247 of 2,144; median error 0.70 ->
    0.19 m/s) and leaves the forward kinematics as they were; the lift ('all') also removes the 2.8 cm median
    floor penetration and the root's kick (median 0.23 -> 0.16 m/s, max 2.8 -> 1.0) but moves every body about
    3 cm from the recorded positions (mean FK error 3.31 -> 4.61 cm), more than the few millimetres allowed.

    `ball_starts` (off by default) makes the reference ball before the first hand contact one the simulator can
    follow (skillmimic.ball_starts, which says why): each clip listed in the ball_starts.json of its folder has its
    ball simulated in `physics` (the environment's), the humanoid kinematic, from the file's fitted start over frames
    0..C (C: the file's window_end), and the simulated position, velocity and spin replace the reference's there;
    over the BLEND_FRAMES frames after C the position offset (simulated minus recorded at C) falls linearly to 0 and
    the velocity there is the central difference of the blended positions. Other clips and frames are unchanged.
    A file fitted for another hand, other ball physics or another `consistent` is refused in one line.
    """

    def __init__(self, source: Union[PathLike, Iterable[PathLike]], device: Union[str, torch.device] = "cpu",
                 hand: str = "full", consistent: Consistent = "ball", ball_starts: bool = False,
                 physics: M.Physics = M.Physics()):
        self.spec = M.load_spec(hand)
        self.files = find_clips(source)
        with cpu_threads(1):  # many small operations: one thread, so that processes side by side do not stall
            clips = [load_clip(f) for f in self.files]
        self.device = torch.device(device)
        self.labels = torch.tensor([skill_label(f) for f in self.files], dtype=torch.long, device=self.device)
        lengths = torch.tensor([c.shape[0] for c in clips], dtype=torch.long)
        self.lengths = lengths.to(self.device)
        self.starts = (torch.cumsum(lengths, 0) - lengths).to(self.device)
        mjm = M.load_model(hand)
        if consistent not in ("off", "ball", "all"):
            raise ValueError(f"consistent={consistent!r}: choose 'off', 'ball' or 'all'")
        geoms = reference_fix.humanoid_geoms(mjm) if consistent != "off" else None
        fix = reference_fix.FixConfig(lift=consistent == "all")
        with cpu_threads(1):
            parts = [self._derive(c.double(), mjm, self.spec, geoms, fix) for c in clips]
        fields = {f.name: torch.cat([getattr(p, f.name) for p in parts]).float().to(self.device)
                  for f in dataclasses.fields(MotionFrames)}
        self.table = MotionFrames(**fields)
        self.ball_starts, self.physics = ball_starts, physics
        self.ball_start_windows: dict[int, int] = {}  # motion id -> C, the last frame replaced (ball_starts)
        if ball_starts:
            self._use_ball_starts(consistent)

    def _use_ball_starts(self, consistent: str) -> None:
        """Replace the reference ball of the clips listed in their folders' ball_starts.json (see the class)."""
        from skillmimic import ball_starts as BS  # (it imports this module)

        listed = []  # (motion id, path of the file, its entry)
        for folder in dict.fromkeys(f.parent for f in self.files):
            path = folder / BS.FILE_NAME
            if not path.is_file():
                continue
            starts = BS.read_ball_starts(path)
            starts.check_model(path, self.spec.hand, self.physics, consistent)
            listed += [(i, path, starts.clips[f.name]) for i, f in enumerate(self.files)
                       if f.parent == folder and f.name in starts.clips]
        if not listed:
            return
        mjm = M.load_model(self.spec.hand, physics=self.physics)
        t = self.table
        for i, path, entry in listed:
            clip, C, T = BS.clip_reference(self, i), entry.window_end, int(self.lengths[i])
            if C > T - 1:
                raise BS.BallStartsError(f"{path}: {self.files[i].name}: window_end {C}, but the clip has {T} frames")
            if not np.allclose(clip.ball[0], entry.ball_pos, atol=1e-4, rtol=0.0):
                raise BS.BallStartsError(f"{path}: {self.files[i].name}: fitted for a ball at {list(entry.ball_pos)} "
                                         f"at frame 0, the clip's is at {clip.ball[0].round(4).tolist()} (refit it)")
            track = BS.kinematic_ball_rollout(mjm, self.spec, clip.qpos, clip.qvel, clip.ball[0],
                                              np.asarray(entry.lin_vel), np.asarray(entry.ang_vel), C)
            pos, vel, spin = blend_ball(clip.ball, t.ball_vel[self.starts[i] : self.starts[i] + T].cpu().double(),
                                        track)  # (T, 3) each
            rows = slice(int(self.starts[i]), int(self.starts[i]) + T)
            for name, x in (("ball_pos", pos), ("ball_vel", vel), ("ball_ang_vel", spin)):
                getattr(t, name)[rows] = x.to(getattr(t, name))
            self.ball_start_windows[i] = C

    @staticmethod
    def _derive(x: torch.Tensor, mjm, spec: M.ModelSpec,
                geoms: reference_fix.HumanoidGeoms | None = None,
                fix: reference_fix.FixConfig = reference_fix.FixConfig()) -> MotionFrames:
        """Derived quantities of one clip x (T, 337), float64 on the CPU, for the model mjm described by spec.
        With geoms (the model's, reference_fix.humanoid_geoms), the humanoid and the ball are first moved out of
        the floor and the ball out of the hands (reference_fix.fix_positions); velocities follow the moved
        positions."""
        T = x.shape[0]
        root_quat = rotations.quat_from_expmap(x[:, ROOT_ROT])
        # Keep consecutive root quaternions in one hemisphere so that interpolation and differences are smooth.
        root_quat = _continuous(root_quat)
        dof_pos = spec.dof_from_expmap(x[:, JOINT_ROT].reshape(T, M.NUM_JOINTS, 3))  # dropped hinges: gone
        qpos = torch.zeros(T, spec.nq, dtype=torch.float64)
        qpos[:, 0:3] = x[:, ROOT_POS]
        qpos[:, 3:7] = root_quat
        qpos[:, spec.dof_qpos] = dof_pos
        body_pos, body_quat = M.forward_kinematics(mjm, qpos)
        root_pos, ball_pos = x[:, ROOT_POS], x[:, BALL_POS]
        if geoms is not None:
            lift, ball_pos = reference_fix.fix_positions(body_pos, body_quat, ball_pos, geoms, fix)  # (T,), (T, 3)
            up = torch.stack((torch.zeros_like(lift), torch.zeros_like(lift), lift), -1)  # (T, 3)
            root_pos, body_pos = root_pos + up, body_pos + up[:, None]  # a lift moves every body alike
        dof_step = rotations.wrap_angle(dof_pos[1:] - dof_pos[:-1]) * FPS  # hinge angles wrap at +-pi
        return MotionFrames(
            root_pos=root_pos,
            root_quat=root_quat,
            root_lin_vel=_central_difference(root_pos, FPS),
            root_ang_vel=_quat_rate(root_quat, FPS),
            dof_pos=dof_pos,
            dof_vel=_average_forward(dof_step),
            body_pos=body_pos,
            body_quat=body_quat,
            body_vel=_central_difference(body_pos, FPS),
            body_pos_recorded=x[:, BODY_POS].reshape(T, M.NUM_BODIES, 3),
            ball_pos=ball_pos,
            ball_vel=_central_difference(ball_pos, FPS),
            ball_ang_vel=torch.zeros_like(ball_pos),
            contact=(x[:, CONTACT] > 0.5).double(),
        )

    @property
    def num_motions(self) -> int:
        return len(self.files)

    @property
    def num_frames(self) -> int:
        return int(self.table.root_pos.shape[0])

    def rows(self, motion_ids: torch.Tensor, frame_ids: torch.Tensor) -> torch.Tensor:
        """Rows of the flat tables for frames of clips: motion_ids, frame_ids (B,) -> (B,). Frame ids are clamped
        to the clip, so a frame past the end reads as the last one. Gather one field with `table.x[rows]`."""
        last = self.lengths[motion_ids] - 1
        return self.starts[motion_ids] + torch.minimum(frame_ids.clamp(min=0), last)

    def frames(self, motion_ids: torch.Tensor, frame_ids: torch.Tensor) -> MotionFrames:
        """Every reference quantity of a batch of frames: one gather per field, no Python loop.
        motion_ids, frame_ids (B,) -> MotionFrames with fields (B, ...)."""
        rows = self.rows(motion_ids, frame_ids)
        return MotionFrames(**{f.name: getattr(self.table, f.name)[rows] for f in dataclasses.fields(MotionFrames)})

    def state(self, motion_ids: torch.Tensor, frame_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Simulator state of reference frames (for reference-state init). -> qpos (B, nq), qvel (B, nv) of the
        set's model (170 and 168 for the full hand)."""
        rows = self.rows(motion_ids, frame_ids)
        return frames_to_state(*(getattr(self.table, name)[rows] for name in _STATE_FIELDS))


def _continuous(q: torch.Tensor) -> torch.Tensor:
    """Flip the signs of a quaternion sequence (T, 4) so that each is in the hemisphere of the one before."""
    flips = torch.ones(q.shape[0], 1, dtype=q.dtype)
    flips[1:, 0] = torch.where((q[1:] * q[:-1]).sum(-1) < 0, -1.0, 1.0)
    return q * torch.cumprod(flips, dim=0)


# The MotionFrames fields that make a simulator state, in frames_to_state's order.
_STATE_FIELDS = ("root_pos", "root_quat", "root_lin_vel", "root_ang_vel", "dof_pos", "dof_vel", "ball_pos", "ball_vel",
                 "ball_ang_vel")


def frames_to_state(
    root_pos: torch.Tensor,
    root_quat: torch.Tensor,
    root_lin_vel: torch.Tensor,
    root_ang_vel: torch.Tensor,
    dof_pos: torch.Tensor,
    dof_vel: torch.Tensor,
    ball_pos: torch.Tensor,
    ball_vel: torch.Tensor,
    ball_ang_vel: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """qpos (B, 14 + D) and qvel (B, 12 + D) of reference frames (arguments as in MotionFrames, D hinges).
    MuJoCo's free joint takes its angular velocity in the body frame, so the world angular velocity is rotated
    into the root frame; the ball's orientation is the identity (the data has none), so its world angular velocity
    (0 but on fitted ball starts) is its body frame's."""
    zero_ball_rot = torch.zeros_like(ball_pos)
    one = torch.ones_like(ball_pos[:, :1])
    qpos = torch.cat((root_pos, root_quat, dof_pos, ball_pos, one, zero_ball_rot), dim=1)
    root_ang_vel_local = rotations.quat_rotate_inverse(root_quat, root_ang_vel)
    qvel = torch.cat((root_lin_vel, root_ang_vel_local, dof_vel, ball_vel, ball_ang_vel), dim=1)
    return qpos, qvel
